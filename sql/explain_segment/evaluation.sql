-- The segment's latest recorded evaluation, at or before %(as_of)s when one is given.
SELECT evaluated_at, run_id, definition_hash, members
FROM audience_evaluation
WHERE segment_id = %(segment_id)s
  AND (%(as_of)s::timestamptz IS NULL OR evaluated_at <= %(as_of)s::timestamptz)
ORDER BY evaluated_at DESC
LIMIT 1
