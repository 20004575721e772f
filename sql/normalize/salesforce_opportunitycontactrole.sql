INSERT INTO core_opportunity_person AS c (source_key, instance, opportunity_key, person_key, role,
                                          is_primary, is_deleted, extracted_at)
SELECT DISTINCT ON (r._source_key)
       r._source_key, r._instance,
       (r."OpportunityId") || '@' || r._instance || '.Salesforce',
       (r."ContactId") || '@' || r._instance || '.Salesforce',
       r."Role", (r."IsPrimary")::boolean,
       coalesce((r."IsDeleted")::boolean, false), b.extracted_at
FROM raw_salesforce_opportunitycontactrole r JOIN ops_ingest_batch b ON b.batch_id = r._batch_id
WHERE r._instance = %(instance)s AND r._batch_id = ANY (%(batch_ids)s)
ORDER BY r._source_key, b.extracted_at DESC, b.loaded_at DESC, r._ctid DESC
ON CONFLICT (source_key) DO UPDATE
SET opportunity_key = EXCLUDED.opportunity_key, person_key = EXCLUDED.person_key, role = EXCLUDED.role,
    is_primary = EXCLUDED.is_primary, is_deleted = EXCLUDED.is_deleted, extracted_at = EXCLUDED.extracted_at
WHERE c.extracted_at <= EXCLUDED.extracted_at
