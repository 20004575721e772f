-- The people a streaming pass re-evaluates: those whose events or source records changed since the
-- previous pass (or whose person id was formed or retired by stitching since), and every current
-- member of a streaming segment (time windows slide: a member may leave with no change at all).
CREATE TEMP TABLE stream_persons ON COMMIT DROP AS
SELECT m.person_id
FROM core_event e JOIN identity_record_person m ON m.record_key = e.person_key
WHERE e.changed_at > %(since)s
UNION
SELECT m.person_id
FROM core_person p JOIN identity_record_person m ON m.record_key = p.source_key
WHERE p.changed_at > %(since)s
UNION
SELECT person_id FROM identity_person WHERE created_at > %(since)s OR retired_at > %(since)s
UNION
SELECT person_id FROM audience_membership WHERE exited_at IS NULL AND segment_id = ANY(%(segment_ids)s::text[])
