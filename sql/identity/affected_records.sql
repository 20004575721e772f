-- The live records whose person must be recomputed: those of every person a changed record
-- belonged to or now shares a joining identity with, and the changed records themselves.
CREATE TEMP TABLE stitch_records ON COMMIT DROP AS
WITH touched AS (
    SELECT m.person_id FROM identity_record_person m JOIN stitch_changed c USING (record_key)
    UNION
    SELECT m.person_id
    FROM stitch_changed c
    JOIN identity_link l ON l.record_key = c.record_key AND l.joins
    JOIN identity_link n ON n.namespace = l.namespace AND n.value = l.value AND n.joins
    JOIN identity_record_person m ON m.record_key = n.record_key
)
SELECT m.record_key FROM identity_record_person m JOIN touched USING (person_id)
WHERE NOT EXISTS (SELECT 1 FROM stitch_changed c WHERE c.record_key = m.record_key AND c.gone)
UNION
SELECT c.record_key FROM stitch_changed c WHERE NOT c.gone
