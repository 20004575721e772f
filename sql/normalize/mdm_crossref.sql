-- The MDM's latest drop is the whole truth: cross-references absent from it are withdrawn.
WITH latest AS (
    SELECT max(_extracted_at) AS at FROM raw_mdm_crossref WHERE _instance = %(instance)s
)
, removed AS (
    DELETE FROM core_account_xref x
    WHERE NOT EXISTS (SELECT 1 FROM raw_mdm_crossref r, latest
                      WHERE r._instance = %(instance)s AND r._extracted_at = latest.at
                        AND r."mdm_id" = x.mdm_id
                        AND r."member_source_key" = x.account_key)
)
INSERT INTO core_account_xref AS c (mdm_id, account_key, name, extracted_at)
SELECT DISTINCT ON (r."mdm_id", r."member_source_key")
       r."mdm_id", r."member_source_key", r."name", r._extracted_at
FROM raw_mdm_crossref r, latest
WHERE r._instance = %(instance)s AND r._extracted_at = latest.at
ORDER BY r."mdm_id", r."member_source_key", r._loaded_at DESC
ON CONFLICT (mdm_id, account_key) DO UPDATE SET name = EXCLUDED.name, extracted_at = EXCLUDED.extracted_at
