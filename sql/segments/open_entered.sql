-- Newly qualifying people enter at the evaluation time; current members are left as they are.
INSERT INTO audience_membership (segment_id, person_id, entered_at)
SELECT c.segment_id, c.person_id, %(as_of)s
FROM segment_candidates c
WHERE c.segment_id = %(segment_id)s
  AND NOT EXISTS (SELECT 1 FROM audience_membership m
                  WHERE m.segment_id = c.segment_id AND m.person_id = c.person_id AND m.exited_at IS NULL)
