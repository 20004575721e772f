-- The persons this run creates, with their size. Ids created in one run are created (created_at:
-- "oldest" in a merge) in the order of their id. A plain INSERT of the new ones (update_persons
-- handled the others) costs half an INSERT ... ON CONFLICT when a full run creates them all.
INSERT INTO identity_person (person_id, created_run, records, identities)
SELECT a.person_id, %(run_id)s, s.records, s.identities
FROM stitch_assignment a
JOIN stitch_component_size s USING (component)
WHERE NOT EXISTS (SELECT 1 FROM identity_person ip WHERE ip.person_id = a.person_id)
ORDER BY a.person_id
