-- Where the ids that no longer stand went: absorbed by a merge, or split into several persons.
INSERT INTO identity_person_lineage (person_id, successor_id, event, run_id)
SELECT DISTINCT p.person_id, a.person_id,
       CASE WHEN parts.n = 1 THEN 'merge' ELSE 'split' END, %(run_id)s
FROM stitch_prior p
JOIN stitch_assignment a USING (component)
JOIN (SELECT person_id, count(DISTINCT component) AS n FROM stitch_prior GROUP BY person_id) parts
  ON parts.person_id = p.person_id
WHERE p.person_id <> a.person_id
ON CONFLICT (person_id, successor_id) DO NOTHING
