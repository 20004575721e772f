-- CRM leads are people too; a converted lead points at the contact and account it became.
INSERT INTO core_person AS c (source_key, system, instance, record_type, email, first_name, last_name,
                              title, company, unsubscribed, crm_key, account_key, created_at, updated_at,
                              is_deleted, extracted_at)
SELECT DISTINCT ON (r._source_key)
       r._source_key, 'Salesforce', r._instance, 'crm_lead',
       r."Email", r."FirstName", r."LastName", r."Title",
       r."Company", coalesce((r."HasOptedOutOfEmail")::boolean, false),
       CASE WHEN r."ConvertedContactId" IS NOT NULL
            THEN (r."ConvertedContactId") || '@' || r._instance || '.Salesforce' END,
       CASE WHEN r."ConvertedAccountId" IS NOT NULL
            THEN (r."ConvertedAccountId") || '@' || r._instance || '.Salesforce' END,
       (r."CreatedDate")::timestamptz, (r."SystemModstamp")::timestamptz,
       coalesce((r."IsDeleted")::boolean, false), b.extracted_at
FROM raw_salesforce_lead r JOIN ops_ingest_batch b ON b.batch_id = r._batch_id
WHERE r._instance = %(instance)s AND r._batch_id = ANY (%(batch_ids)s)
ORDER BY r._source_key, b.extracted_at DESC, b.loaded_at DESC, r._ctid DESC
ON CONFLICT (source_key) DO UPDATE
SET email = EXCLUDED.email, first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name,
    title = EXCLUDED.title, company = EXCLUDED.company, unsubscribed = EXCLUDED.unsubscribed,
    crm_key = EXCLUDED.crm_key, account_key = EXCLUDED.account_key, created_at = EXCLUDED.created_at,
    updated_at = EXCLUDED.updated_at, is_deleted = EXCLUDED.is_deleted, extracted_at = EXCLUDED.extracted_at
WHERE c.extracted_at <= EXCLUDED.extracted_at
