-- A full run rebuilds the profile of every standing person (the profile tables were emptied:
-- retired persons need no deleting, and account changes add no one).
CREATE TEMP TABLE stitch_persons ON COMMIT DROP AS
SELECT person_id FROM stitch_assignment;

ANALYZE stitch_persons;

-- Their records, read by every profile statement below: after a full run's remap, every record in
-- the map belongs to a standing person, so the map itself (a view, dropped by profile_index_persons).
CREATE TEMP VIEW stitch_person_records AS
SELECT person_id, record_key FROM identity_record_person;
