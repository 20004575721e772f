-- Streaming: among the people re-evaluated, members no longer qualifying leave now.
UPDATE audience_membership m
SET exited_at = %(as_of)s
WHERE m.segment_id = %(segment_id)s AND m.exited_at IS NULL
  AND m.person_id IN (SELECT person_id FROM stream_persons)
  AND NOT EXISTS (SELECT 1 FROM segment_candidates c
                  WHERE c.segment_id = m.segment_id AND c.person_id = m.person_id)
