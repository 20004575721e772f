-- The records an incremental run looks at: every record changed since the previous run, live or
-- deleted, once each, with the account it points at (account_side_changed). Web events stand for
-- their ECID: one pseudo-record per ECID. A record gone from core_person whose web events changed
-- is still a node (through its events), as in a full run: gone only when no source holds it.
CREATE TEMP TABLE stitch_changed ON COMMIT DROP AS
SELECT record_key, bool_and(gone) AS gone, max(account_key) AS account_key
FROM (SELECT source_key, is_deleted, account_key
      FROM core_person
      WHERE changed_at > %(since)s::timestamptz
      UNION ALL
      SELECT person_key, false, NULL
      FROM core_event
      WHERE ecid IS NOT NULL AND changed_at > %(since)s::timestamptz) c (record_key, gone, account_key)
GROUP BY record_key
