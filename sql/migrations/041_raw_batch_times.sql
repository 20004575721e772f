-- Raw rows no longer carry their batch's extraction and load times: both live once per batch in
-- ops_ingest_batch (written in the landing's transaction). Evaluating the two defaults for every
-- row made a bulk file's COPY about twice as slow as a plain COPY of the same file.
-- Normalisation now reads only the batches it has not normalised yet (normalized_at).
DO $$
DECLARE raw_table text;
BEGIN
    FOR raw_table IN
        SELECT c.table_name FROM information_schema.columns c
        WHERE c.table_schema = current_schema() AND c.table_name LIKE 'raw\_%'
          AND c.table_name <> 'raw_quarantine' AND c.column_name = '_loaded_at'
        ORDER BY 1
    LOOP
        -- Rows landed before batches were recorded keep their times in a batch row of their own.
        EXECUTE format($q$
            INSERT INTO ops_ingest_batch (batch_id, source_id, object, rows, api_calls, extracted_at, loaded_at)
            SELECT _batch_id, min(_instance), %L, count(*), 0, max(_extracted_at), max(_loaded_at)
            FROM %I GROUP BY _batch_id
            ON CONFLICT (batch_id) DO NOTHING$q$, raw_table, raw_table);
        EXECUTE format('ALTER TABLE %I DROP COLUMN _extracted_at, DROP COLUMN _loaded_at', raw_table);
    END LOOP;
END $$;

ALTER TABLE ops_ingest_batch ADD COLUMN normalized_at timestamptz;
-- Every batch already in the lake has been normalised by the runs that landed it.
UPDATE ops_ingest_batch SET normalized_at = loaded_at;
CREATE INDEX ops_ingest_batch__pending_idx ON ops_ingest_batch (source_id) WHERE normalized_at IS NULL;
