-- Each recomputed record points at its person; records that left the graph point nowhere.
DELETE FROM identity_record_person m USING stitch_prior p WHERE m.record_key = p.record_key;
DELETE FROM identity_record_person m USING stitch_component c WHERE m.record_key = c.record_key;
INSERT INTO identity_record_person (record_key, person_id)
SELECT c.record_key, a.person_id FROM stitch_component c JOIN stitch_assignment a USING (component);
