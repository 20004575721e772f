-- The identities the web events of the records to judge carry (CSV): each ECID and the email seen
-- with it, once per record (events repeat them), last seen at their latest event (microseconds
-- since the epoch). identity.py merges them with the records' own links (an identity seen in
-- both is one link: newest seen, best rank).
COPY (
SELECT e.person_key, v.namespace, v.value, (extract(epoch FROM max(e.occurred_at)) * 1000000)::bigint,
       min(v.priority)
FROM core_event e
CROSS JOIN LATERAL (VALUES ('ecid', btrim(e.ecid), 3), ('email', lower(btrim(e.email)), 2)) AS v (namespace, value, priority)
WHERE e.ecid IS NOT NULL AND v.value IS NOT NULL
  AND (%(full)s OR e.person_key IN (SELECT record_key FROM stitch_changed))
GROUP BY e.person_key, v.namespace, v.value
) TO STDOUT WITH (FORMAT csv)
