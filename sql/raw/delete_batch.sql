-- Replace a landing batch: a re-run task first removes what its previous attempt landed. A batch
-- is recorded in ops_ingest_batch in the transaction that lands its rows, so a batch never landed
-- has nothing to remove, and the scan (which would read every row landed since the last vacuum)
-- is skipped by the one-time check.
DELETE FROM {rows}
WHERE _batch_id = %(batch_id)s
  AND EXISTS (SELECT 1 FROM ops_ingest_batch WHERE batch_id = %(batch_id)s)
