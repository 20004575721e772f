-- The MDM's latest drop is the whole truth: cross-references absent from it are withdrawn. Only a
-- drop not normalised yet counts (with none, nothing changes).
WITH latest AS (
    SELECT r._batch_id AS batch_id, b.extracted_at
    FROM raw_mdm_crossref r JOIN ops_ingest_batch b ON b.batch_id = r._batch_id
    WHERE r._instance = %(instance)s AND r._batch_id = ANY (%(batch_ids)s)
    ORDER BY b.extracted_at DESC, b.loaded_at DESC
    LIMIT 1
)
, removed AS (
    DELETE FROM core_account_xref x
    WHERE EXISTS (SELECT 1 FROM latest)
      AND NOT EXISTS (SELECT 1 FROM raw_mdm_crossref r, latest
                      WHERE r._batch_id = latest.batch_id
                        AND r."mdm_id" = x.mdm_id
                        AND r."member_source_key" = x.account_key)
)
INSERT INTO core_account_xref AS c (mdm_id, account_key, name, extracted_at)
SELECT DISTINCT ON (r."mdm_id", r."member_source_key")
       r."mdm_id", r."member_source_key", r."name", latest.extracted_at
FROM raw_mdm_crossref r, latest
WHERE r._batch_id = latest.batch_id
ORDER BY r."mdm_id", r."member_source_key", r._ctid DESC
ON CONFLICT (mdm_id, account_key) DO UPDATE SET name = EXCLUDED.name, extracted_at = EXCLUDED.extracted_at
