-- A full run rebuilds the profile of every standing person (the profile tables were emptied:
-- retired persons need no deleting, and account changes add no one).
CREATE TEMP TABLE stitch_persons ON COMMIT DROP AS
SELECT person_id FROM stitch_assignment;

ANALYZE stitch_persons;

-- Their records, read by every profile statement below (rather than the whole record -> person map
-- joined again each time).
CREATE TEMP TABLE stitch_person_records ON COMMIT DROP AS
SELECT m.person_id, m.record_key FROM identity_record_person m JOIN stitch_persons USING (person_id);

ANALYZE stitch_person_records;
