-- The identities the changed records' web events carry (CSV): each ECID and the email seen with
-- it, once per record (events repeat them), last seen at their latest event. identity.py merges
-- them with the records' own links (an identity seen in both is one link: newest seen, best rank).
COPY (
SELECT e.person_key, v.namespace, v.value, max(e.occurred_at), extract(epoch FROM max(e.occurred_at)),
       min(v.priority)
FROM core_event e
JOIN stitch_changed c ON c.record_key = e.person_key
CROSS JOIN LATERAL (VALUES ('ecid', btrim(e.ecid), 3), ('email', lower(btrim(e.email)), 2)) AS v (namespace, value, priority)
WHERE e.ecid IS NOT NULL AND v.value IS NOT NULL
GROUP BY e.person_key, v.namespace, v.value
) TO STDOUT WITH (FORMAT csv)
