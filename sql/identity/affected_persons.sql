-- Every record of every person this run touches: those a changed record belonged to or now shares
-- a joining identity with. Read twice below (the records to recompute, then their prior persons)
-- from this small table rather than from the whole record -> person map.
CREATE TEMP TABLE stitch_touched ON COMMIT DROP AS
WITH touched AS (
    SELECT m.person_id FROM identity_record_person m JOIN stitch_changed c USING (record_key)
    UNION
    SELECT m.person_id
    FROM stitch_changed c
    JOIN identity_link l ON l.record_key = c.record_key AND l.joins
    JOIN identity_link n ON n.namespace = l.namespace AND n.value = l.value AND n.joins
                        AND n.record_key <> l.record_key      -- the record itself: the branch above
    JOIN identity_record_person m ON m.record_key = n.record_key
)
SELECT m.record_key, m.person_id FROM identity_record_person m JOIN touched USING (person_id);

ANALYZE stitch_touched;
