-- A landed batch (a re-landed batch replaces its rows, so it is normalised again).
INSERT INTO ops_ingest_batch (batch_id, source_id, object, rows, api_calls, extracted_at)
VALUES (%(batch_id)s, %(source_id)s, %(object)s, %(rows)s, %(api_calls)s, %(extracted_at)s)
ON CONFLICT (batch_id) DO UPDATE
SET rows = EXCLUDED.rows, api_calls = EXCLUDED.api_calls, extracted_at = EXCLUDED.extracted_at,
    loaded_at = clock_timestamp(), normalized_at = NULL
