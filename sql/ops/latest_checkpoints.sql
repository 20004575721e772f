SELECT DISTINCT ON (checkpoint) checkpoint, success
FROM ops_checkpoint_result
ORDER BY checkpoint, recorded_at DESC
