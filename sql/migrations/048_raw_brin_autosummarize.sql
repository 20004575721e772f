-- The lake's batch indexes (BRIN on _batch_id) are summarised by autovacuum as page ranges fill:
-- without a summary a range is a candidate for every batch looked up, so normalisation's lookup of
-- the pending batches read every row landed since the last summary.
DO $$
DECLARE index_name text;
BEGIN
    FOR index_name IN
        SELECT i.relname
        FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid
        JOIN pg_class t ON t.oid = x.indrelid
        JOIN pg_am am ON am.oid = i.relam
        WHERE t.relnamespace = current_schema()::regnamespace AND t.relname LIKE 'raw\_%\_\_rows'
          AND am.amname = 'brin'
        ORDER BY 1
    LOOP
        EXECUTE format('ALTER INDEX %I SET (autosummarize = on)', index_name);
    END LOOP;
END $$;
