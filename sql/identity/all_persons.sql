-- A full run touches every person: every record of the record -> person map (a person whose
-- records have all left the sources is retired).
CREATE TEMP TABLE stitch_touched ON COMMIT DROP AS
SELECT m.record_key, m.person_id
FROM identity_record_person m;

ANALYZE stitch_touched;
