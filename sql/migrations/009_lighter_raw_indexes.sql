-- Raw tables keep only their _batch_id index: normalisation reads an instance's rows in one scan,
-- and the (_source_key, _extracted_at) indexes cost about a third of every bulk landing.
DO $$
DECLARE index_name text;
BEGIN
    FOR index_name IN
        SELECT indexname FROM pg_indexes
        WHERE schemaname = current_schema() AND tablename LIKE 'raw\_%'
          AND indexdef LIKE '%(_source_key, _extracted_at DESC)%'
    LOOP
        EXECUTE format('DROP INDEX %I', index_name);
    END LOOP;
END $$;
