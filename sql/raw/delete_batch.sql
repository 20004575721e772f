-- Replace a landing batch: a re-run task first removes what its previous attempt landed. A batch
-- never landed has no number yet, and the one-time check skips the scan.
DELETE FROM {rows}
WHERE _batch = (SELECT batch_no FROM raw_batch WHERE batch_id = %(batch_id)s)
  AND EXISTS (SELECT 1 FROM raw_batch WHERE batch_id = %(batch_id)s)
