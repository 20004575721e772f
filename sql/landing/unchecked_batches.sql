SELECT b.batch_id, b.object, b.loaded_at
FROM ops_ingest_batch b
LEFT JOIN ops_landing_check c ON c.batch_id = b.batch_id AND c.loaded_at = b.loaded_at
WHERE b.source_id = %(source_id)s AND c.batch_id IS NULL
ORDER BY b.loaded_at
