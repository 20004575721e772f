-- The persons standing after this run, with their size (a re-formed id is live again); a person
-- standing as it was is not rewritten. Sizes come from the component computation: its records, and
-- the identities the graph kept on them. Ids created in one run are created (created_at: "oldest"
-- in a merge) in the order of their id.
INSERT INTO identity_person AS ip (person_id, created_run, records, identities)
SELECT a.person_id, %(run_id)s, s.records, s.identities
FROM stitch_assignment a
JOIN stitch_component_size s USING (component)
ORDER BY a.person_id
ON CONFLICT (person_id) DO UPDATE
SET records = EXCLUDED.records, identities = EXCLUDED.identities, retired_at = NULL, retired_reason = NULL
WHERE (ip.records, ip.identities) IS DISTINCT FROM (EXCLUDED.records, EXCLUDED.identities)
   OR ip.retired_at IS NOT NULL OR ip.retired_reason IS NOT NULL
