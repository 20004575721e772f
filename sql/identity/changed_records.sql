-- The records an incremental run singles out: every record changed since the previous run, live
-- or deleted. Web events stand for their ECID: one pseudo-record per ECID. A full run (`since`
-- NULL) judges every record and singles out none: the table is left empty.
CREATE TEMP TABLE stitch_changed ON COMMIT DROP AS
SELECT source_key AS record_key, is_deleted AS gone
FROM core_person
WHERE changed_at > %(since)s::timestamptz
UNION
SELECT person_key, false
FROM core_event
WHERE ecid IS NOT NULL AND changed_at > %(since)s::timestamptz
