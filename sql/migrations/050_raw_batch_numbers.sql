-- Raw rows carry their batch's number (4 bytes) instead of its id and instance as text (about 100
-- bytes a row, and a BRIN index comparing text on every row written): a bulk file's COPY wrote
-- two thirds more than a plain COPY of the same file and spent about half again its time. Each
-- batch's id and instance live once in raw_batch; the lake's views join them back, so every
-- reader still sees _batch_id and _instance (and the number, as _batch).
CREATE TABLE raw_batch (
    batch_no integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    batch_id text NOT NULL UNIQUE,
    instance text NOT NULL
);

-- A raw table's view: its source key, the row's physical position as _ctid (the last row written
-- wins within a batch), the batch columns, then every column of its rows in order (a column
-- added to the rows is appended, so CREATE OR REPLACE keeps the view in place for its readers).
CREATE OR REPLACE FUNCTION refresh_raw_view(lake_table text) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    key_expression text;
    row_columns text;
BEGIN
    SELECT k.expression INTO STRICT key_expression FROM raw_source_key k WHERE k.raw_table = lake_table;
    SELECT string_agg(format('r.%I', a.attname), ', ' ORDER BY a.attnum) INTO STRICT row_columns
    FROM pg_attribute a
    WHERE a.attrelid = format('%I', lake_table || '__rows')::regclass
      AND a.attnum > 0 AND NOT a.attisdropped AND a.attname <> '_batch';
    EXECUTE format('CREATE OR REPLACE VIEW %I AS SELECT %s AS _source_key, lake.* FROM ('
                   'SELECT r.ctid AS _ctid, r._batch, b.batch_id AS _batch_id, b.instance AS _instance, %s '
                   'FROM %I r JOIN raw_batch b ON b.batch_no = r._batch) lake',
                   lake_table, key_expression, row_columns, lake_table || '__rows');
END $fn$;

DO $$
DECLARE lake text;
BEGIN
    FOR lake IN SELECT raw_table FROM raw_source_key ORDER BY 1
    LOOP
        EXECUTE format('INSERT INTO raw_batch (batch_id, instance) '
                       'SELECT _batch_id, min(_instance) FROM %I GROUP BY _batch_id ORDER BY 1 '
                       'ON CONFLICT (batch_id) DO NOTHING', lake || '__rows');
        EXECUTE format('DROP VIEW %I', lake);
        EXECUTE format('ALTER TABLE %I ADD COLUMN _batch integer', lake || '__rows');
        EXECUTE format('UPDATE %I r SET _batch = b.batch_no FROM raw_batch b WHERE b.batch_id = r._batch_id',
                       lake || '__rows');
        -- Dropping _batch_id drops its BRIN index too.
        EXECUTE format('ALTER TABLE %I ALTER COLUMN _batch SET NOT NULL, '
                       'ALTER COLUMN _batch SET DEFAULT current_setting(''cdp.batch'')::integer, '
                       'DROP COLUMN _batch_id, DROP COLUMN _instance', lake || '__rows');
        EXECUTE format('CREATE INDEX %I ON %I USING brin (_batch) WITH (autosummarize = on)',
                       lake || '__batch_idx', lake || '__rows');
        PERFORM refresh_raw_view(lake);
    END LOOP;
END $$;
