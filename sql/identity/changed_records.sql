-- The records an incremental run looks at: every record changed since the previous run, live or
-- deleted. Web events stand for their ECID: one pseudo-record per ECID.
CREATE TEMP TABLE stitch_changed ON COMMIT DROP AS
SELECT source_key AS record_key, is_deleted AS gone
FROM core_person
WHERE changed_at > %(since)s::timestamptz
UNION
SELECT person_key, false
FROM core_event
WHERE ecid IS NOT NULL AND changed_at > %(since)s::timestamptz
