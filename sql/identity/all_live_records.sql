-- A full run recomputes every live record (affected_records, for a full run).
CREATE TEMP TABLE stitch_records ON COMMIT DROP AS
SELECT record_key FROM stitch_changed WHERE NOT gone
