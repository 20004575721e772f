-- The source's landed batches that normalisation has not brought into core yet, oldest first.
SELECT batch_id FROM ops_ingest_batch
WHERE source_id = %(source_id)s AND normalized_at IS NULL
ORDER BY loaded_at
