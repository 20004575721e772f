-- The live records whose person must be recomputed: those of every person a changed record
-- belonged to or now shares a joining identity with (affected_persons), and the changed records
-- themselves.
CREATE TEMP TABLE stitch_records ON COMMIT DROP AS
SELECT t.record_key FROM stitch_touched t
WHERE NOT EXISTS (SELECT 1 FROM stitch_changed c WHERE c.record_key = t.record_key AND c.gone)
UNION
SELECT c.record_key FROM stitch_changed c WHERE NOT c.gone
