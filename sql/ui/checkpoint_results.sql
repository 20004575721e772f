-- The latest result of each checkpoint, with how many violations it found and the first of them.
SELECT DISTINCT ON (checkpoint)
       checkpoint, run_id, success, recorded_at,
       coalesce(jsonb_array_length(details -> 'violations'), 0) AS violations,
       details -> 'violations' ->> 0                            AS first_violation
FROM ops_checkpoint_result
ORDER BY checkpoint, recorded_at DESC
