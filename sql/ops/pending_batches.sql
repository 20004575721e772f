-- The source's landed batches that normalisation has not brought into core yet, oldest first,
-- with their row counts (an empty batch is marked too, but is nothing new to announce).
SELECT batch_id, rows FROM ops_ingest_batch
WHERE source_id = %(source_id)s AND normalized_at IS NULL
ORDER BY loaded_at
