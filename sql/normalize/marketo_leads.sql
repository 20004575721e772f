-- Marketo leads -> core_person. On CRM-synced instances the lead carries its CRM contact/lead and
-- account ids, which become CRM sourceKeys (<id>@<orgId>.Salesforce) for stitching.
INSERT INTO core_person AS c (source_key, system, instance, record_type, email, first_name, last_name,
                              title, company, unsubscribed, crm_key, account_key, created_at, updated_at,
                              is_deleted, extracted_at)
SELECT DISTINCT ON (r._source_key)
       r._source_key, 'Marketo', r._instance, 'lead',
       r."email", r."firstName", r."lastName",
       r."title", r."company",
       coalesce((r."unsubscribed")::boolean, false),
       CASE WHEN %(crm_org)s::text IS NOT NULL
             AND coalesce(r."sfdcContactId", r."sfdcLeadId") IS NOT NULL
            THEN coalesce(r."sfdcContactId", r."sfdcLeadId") || '@' || %(crm_org)s || '.Salesforce'
       END,
       CASE WHEN %(crm_org)s::text IS NOT NULL AND r."sfdcAccountId" IS NOT NULL
            THEN r."sfdcAccountId" || '@' || %(crm_org)s || '.Salesforce'
       END,
       (r."createdAt")::timestamptz, (r."updatedAt")::timestamptz,
       false, b.extracted_at
FROM raw_marketo_leads r JOIN ops_ingest_batch b ON b.batch_id = r._batch_id
WHERE r._instance = %(instance)s AND r._batch_id = ANY (%(batch_ids)s)
ORDER BY r._source_key, b.extracted_at DESC, b.loaded_at DESC, r._ctid DESC
ON CONFLICT (source_key) DO UPDATE
SET email = EXCLUDED.email, first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name,
    title = EXCLUDED.title, company = EXCLUDED.company, unsubscribed = EXCLUDED.unsubscribed,
    crm_key = EXCLUDED.crm_key, account_key = EXCLUDED.account_key, created_at = EXCLUDED.created_at,
    updated_at = EXCLUDED.updated_at, is_deleted = EXCLUDED.is_deleted, extracted_at = EXCLUDED.extracted_at
WHERE c.extracted_at <= EXCLUDED.extracted_at
