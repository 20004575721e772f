INSERT INTO ops_checkpoint_result (checkpoint, run_id, success, details)
VALUES (%(checkpoint)s, %(run_id)s, %(success)s, %(details)s)
ON CONFLICT (checkpoint, run_id) DO UPDATE
SET success = EXCLUDED.success, details = EXCLUDED.details, recorded_at = clock_timestamp()
