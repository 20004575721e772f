INSERT INTO core_account AS c (source_key, system, instance, crm_key, name, website, industry,
                               annual_revenue, employees, updated_at, is_deleted, extracted_at)
SELECT DISTINCT ON (r._source_key)
       r._source_key, 'Salesforce', r._instance, r._source_key,
       r."Name", r."Website", r."Industry",
       (r."AnnualRevenue")::numeric, (r."NumberOfEmployees")::integer,
       (r."SystemModstamp")::timestamptz, coalesce((r."IsDeleted")::boolean, false),
       b.extracted_at
FROM raw_salesforce_account r JOIN ops_ingest_batch b ON b.batch_id = r._batch_id
WHERE r._instance = %(instance)s AND r._batch_id = ANY (%(batch_ids)s)
ORDER BY r._source_key, b.extracted_at DESC, b.loaded_at DESC, r._ctid DESC
ON CONFLICT (source_key) DO UPDATE
SET name = EXCLUDED.name, website = EXCLUDED.website, industry = EXCLUDED.industry,
    annual_revenue = EXCLUDED.annual_revenue, employees = EXCLUDED.employees,
    updated_at = EXCLUDED.updated_at, is_deleted = EXCLUDED.is_deleted, extracted_at = EXCLUDED.extracted_at
WHERE c.extracted_at <= EXCLUDED.extracted_at
