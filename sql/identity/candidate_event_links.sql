-- The identities the changed records' web events carry (CSV, candidate_views): each ECID and the
-- email seen with it, once per record (events repeat them), last seen at their latest event
-- (microseconds since the epoch). identity.py merges them with the records' own links (an
-- identity seen in both is one link: newest seen, best rank).
COPY (
SELECT e.person_key, e.namespace, e.value, (extract(epoch FROM max(e.occurred_at)) * 1000000)::bigint, min(e.priority)
FROM stitch_candidate_event e
JOIN stitch_changed c ON c.record_key = e.person_key
GROUP BY e.person_key, e.namespace, e.value
) TO STDOUT WITH (FORMAT csv)
