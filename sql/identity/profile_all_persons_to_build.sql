-- A full run rebuilds the profile of every standing person (the profile tables were emptied:
-- retired persons need no deleting, and account changes add no one).
CREATE TEMP TABLE stitch_persons ON COMMIT DROP AS
SELECT person_id FROM stitch_assignment;

ANALYZE stitch_persons;
