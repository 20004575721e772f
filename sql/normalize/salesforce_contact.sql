INSERT INTO core_person AS c (source_key, system, instance, record_type, email, first_name, last_name,
                              title, company, unsubscribed, crm_key, account_key, created_at, updated_at,
                              is_deleted, extracted_at)
SELECT DISTINCT ON (r._source_key)
       r._source_key, 'Salesforce', r._instance, 'contact',
       r._record->>'Email', r._record->>'FirstName', r._record->>'LastName', r._record->>'Title', NULL,
       coalesce((r._record->>'HasOptedOutOfEmail')::boolean, false),
       r._source_key,
       CASE WHEN r._record->>'AccountId' IS NOT NULL
            THEN (r._record->>'AccountId') || '@' || r._instance || '.Salesforce' END,
       (r._record->>'CreatedDate')::timestamptz, (r._record->>'SystemModstamp')::timestamptz,
       coalesce((r._record->>'IsDeleted')::boolean, false), r._extracted_at
FROM raw_salesforce_contact r
WHERE r._instance = %(instance)s
ORDER BY r._source_key, r._extracted_at DESC, r._loaded_at DESC
ON CONFLICT (source_key) DO UPDATE
SET email = EXCLUDED.email, first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name,
    title = EXCLUDED.title, unsubscribed = EXCLUDED.unsubscribed, account_key = EXCLUDED.account_key,
    created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at,
    is_deleted = EXCLUDED.is_deleted, extracted_at = EXCLUDED.extracted_at
WHERE c.extracted_at <= EXCLUDED.extracted_at
