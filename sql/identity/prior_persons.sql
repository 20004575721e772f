-- Every record of every person this run touches, with the component it now falls in (NULL: it
-- left the graph, e.g. deleted at its source).
CREATE TEMP TABLE stitch_prior ON COMMIT DROP AS
SELECT m.record_key, m.person_id, c.component
FROM identity_record_person m
LEFT JOIN stitch_component c USING (record_key)
WHERE m.person_id IN (SELECT person_id FROM identity_record_person JOIN stitch_records USING (record_key)
                      UNION
                      SELECT person_id FROM identity_record_person JOIN stitch_changed USING (record_key))
