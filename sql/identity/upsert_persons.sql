-- The persons standing after this run, with their size (a re-formed id is live again).
INSERT INTO identity_person AS ip (person_id, created_run, records, identities)
SELECT a.person_id, %(run_id)s, count(DISTINCT c.record_key), count(DISTINCT (l.namespace, l.value))
FROM stitch_assignment a
JOIN stitch_component c USING (component)
LEFT JOIN identity_link l ON l.record_key = c.record_key
GROUP BY a.person_id
ON CONFLICT (person_id) DO UPDATE
SET records = EXCLUDED.records, identities = EXCLUDED.identities, retired_at = NULL, retired_reason = NULL
