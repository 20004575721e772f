-- The records this run looks at: every record changed since the previous run (all of them when
-- `since` is NULL), live or deleted. Web events stand for their ECID: one pseudo-record per ECID.
CREATE TEMP TABLE stitch_changed ON COMMIT DROP AS
SELECT source_key AS record_key, is_deleted AS gone
FROM core_person
WHERE %(since)s::timestamptz IS NULL OR changed_at > %(since)s::timestamptz
UNION
SELECT person_key, false
FROM core_event
WHERE ecid IS NOT NULL AND (%(since)s::timestamptz IS NULL OR changed_at > %(since)s::timestamptz)
