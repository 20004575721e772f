SELECT batch_id, object FROM ops_ingest_batch
WHERE source_id = %(source_id)s AND (batch_id LIKE %(run_prefix)s OR batch_id = ANY(%(batch_ids)s))
