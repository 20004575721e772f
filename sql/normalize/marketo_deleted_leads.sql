-- Deleted Marketo leads leave the profile: their core record is flagged, identity drops it.
UPDATE core_person c
SET is_deleted = true, extracted_at = d.extracted_at
FROM (
    SELECT DISTINCT ON (r._source_key) r._source_key, b.extracted_at
    FROM raw_marketo_deleted_leads r JOIN ops_ingest_batch b ON b.batch_id = r._batch_id
    WHERE r._instance = %(instance)s AND r._batch_id = ANY (%(batch_ids)s)
    ORDER BY r._source_key, b.extracted_at DESC
) d
WHERE c.source_key = d._source_key AND NOT c.is_deleted AND c.extracted_at <= d.extracted_at
