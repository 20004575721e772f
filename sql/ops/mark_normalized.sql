-- Batches now in core (in the normalisation's own transaction).
UPDATE ops_ingest_batch SET normalized_at = clock_timestamp() WHERE batch_id = ANY (%(batch_ids)s)
