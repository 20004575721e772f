-- The batch's number for the rows about to be written (the same number when a batch is landed
-- again): the raw tables' default for _batch reads this transaction-local setting, so COPY carries
-- only the source's own columns.
INSERT INTO raw_batch (batch_id, instance) VALUES (%(batch_id)s, %(instance)s)
ON CONFLICT (batch_id) DO UPDATE SET instance = EXCLUDED.instance
RETURNING set_config('cdp.batch', batch_no::text, true)
