-- The persons this run creates, with their size. Ids created in one run are created (created_at:
-- "oldest" in a merge) in the order of their id. A plain INSERT of the new ones (update_persons
-- handled the others) costs half an INSERT ... ON CONFLICT when a full run creates them all. The
-- standing persons are joined to their sizes first: few of them are new in an incremental run,
-- and a join planned after that estimate would rescan the sizes for each.
INSERT INTO identity_person (person_id, created_run, records, identities)
WITH standing AS MATERIALIZED (
    SELECT a.person_id, s.records, s.identities
    FROM stitch_assignment a
    JOIN stitch_component_size s USING (component)
)
SELECT n.person_id, %(run_id)s, n.records, n.identities
FROM standing n
WHERE NOT EXISTS (SELECT 1 FROM identity_person ip WHERE ip.person_id = n.person_id)
ORDER BY n.person_id
