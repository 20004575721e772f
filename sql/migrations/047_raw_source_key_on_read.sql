-- The lake's source key is computed when rows are read, no longer stored with every row: as a
-- generated column it was evaluated for every row a COPY landed, about a third of a bulk file's
-- landing time. Each raw table's rows move to <table>__rows (what the loader COPYs into); a view
-- of the table's old name adds _source_key first, the row's physical position as _ctid (the last
-- row written wins within a batch), then every column of the rows, so every reader (normalisation,
-- landing checks, quarantine, queries of users) reads the lake by its old name.
CREATE TABLE raw_source_key (
    raw_table  text PRIMARY KEY,
    expression text NOT NULL       -- an SQL expression over the raw table's columns
);

-- (Re)creates a raw table's view; called again after a new source field adds a column to its rows
-- (the column is appended to the view, so CREATE OR REPLACE keeps it in place for its readers).
CREATE FUNCTION refresh_raw_view(lake_table text) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE key_expression text;
BEGIN
    SELECT k.expression INTO STRICT key_expression FROM raw_source_key k WHERE k.raw_table = lake_table;
    EXECUTE format('CREATE OR REPLACE VIEW %I AS SELECT %s AS _source_key, r.ctid AS _ctid, r.* FROM %I r',
                   lake_table, key_expression, lake_table || '__rows');
END $fn$;

DO $$
DECLARE lake record;
BEGIN
    FOR lake IN
        SELECT c.relname AS raw_table, pg_get_expr(d.adbin, d.adrelid) AS expression
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'
          AND c.relname LIKE 'raw\_%' AND a.attname = '_source_key' AND a.attgenerated = 's'
        ORDER BY 1
    LOOP
        INSERT INTO raw_source_key (raw_table, expression) VALUES (lake.raw_table, lake.expression);
        EXECUTE format('ALTER TABLE %I DROP COLUMN _source_key', lake.raw_table);
        EXECUTE format('ALTER TABLE %I RENAME TO %I', lake.raw_table, lake.raw_table || '__rows');
        PERFORM refresh_raw_view(lake.raw_table);
    END LOOP;
END $$;
