-- A full run: every record of every person holding a record this run looks at (all of them).
CREATE TEMP TABLE stitch_touched ON COMMIT DROP AS
SELECT m.record_key, m.person_id
FROM identity_record_person m
WHERE m.person_id IN (SELECT person_id FROM identity_record_person JOIN stitch_records USING (record_key)
                      UNION
                      SELECT person_id FROM identity_record_person JOIN stitch_changed USING (record_key));

ANALYZE stitch_touched;
