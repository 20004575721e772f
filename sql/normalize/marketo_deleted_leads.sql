-- Deleted Marketo leads leave the profile: their core record is flagged, identity drops it.
UPDATE core_person c
SET is_deleted = true, extracted_at = d._extracted_at
FROM (
    SELECT DISTINCT ON (_source_key) _source_key, _extracted_at
    FROM raw_marketo_deleted_leads
    WHERE _instance = %(instance)s
    ORDER BY _source_key, _extracted_at DESC
) d
WHERE c.source_key = d._source_key AND NOT c.is_deleted AND c.extracted_at <= d._extracted_at
