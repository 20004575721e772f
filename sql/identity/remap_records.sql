-- Each recomputed record points at its person; records that left the graph point nowhere. Only
-- the mappings that differ are written: most recomputed records keep their person, and each row
-- rewritten costs index maintenance on a large table.
CREATE TEMP TABLE stitch_map ON COMMIT DROP AS
SELECT c.record_key, a.person_id FROM stitch_component c JOIN stitch_assignment a USING (component);
ANALYZE stitch_map;
DELETE FROM identity_record_person m
WHERE m.record_key IN (SELECT record_key FROM stitch_prior UNION ALL SELECT record_key FROM stitch_map)
  AND NOT EXISTS (SELECT 1 FROM stitch_map n WHERE n.record_key = m.record_key AND n.person_id = m.person_id);
INSERT INTO identity_record_person (record_key, person_id)
SELECT n.record_key, n.person_id
FROM stitch_map n
WHERE NOT EXISTS (SELECT 1 FROM identity_record_person m WHERE m.record_key = n.record_key);
