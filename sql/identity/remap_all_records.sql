-- A full run: every record points at its person afresh (records that left the graph point
-- nowhere). The map is emptied and its indexes built once after filling, not row by row.
TRUNCATE identity_record_person;
ALTER TABLE identity_record_person DROP CONSTRAINT identity_record_person_pkey;
DROP INDEX identity_record_person_person_id_idx;
INSERT INTO identity_record_person (record_key, person_id)
SELECT c.record_key, a.person_id FROM stitch_component c JOIN stitch_assignment a USING (component);
ALTER TABLE identity_record_person ADD CONSTRAINT identity_record_person_pkey PRIMARY KEY (record_key);
CREATE INDEX identity_record_person_person_id_idx ON identity_record_person (person_id);
