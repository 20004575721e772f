-- Marketo opportunities -> core_opportunity. crm_key names the CRM deal, so a deal reported by both
-- Marketo and the CRM is counted once in account roll-ups.
INSERT INTO core_opportunity AS c (source_key, system, instance, crm_key, account_key, name, amount,
                                   is_closed, is_won, stage, close_date, updated_at, is_deleted, extracted_at)
SELECT DISTINCT ON (r._source_key)
       r._source_key, 'Marketo', r._instance,
       CASE WHEN %(crm_org)s::text IS NOT NULL AND r."externalOpportunityId" IS NOT NULL
            THEN r."externalOpportunityId" || '@' || %(crm_org)s || '.Salesforce' END,
       CASE WHEN %(crm_org)s::text IS NOT NULL AND r."externalCompanyId" IS NOT NULL
            THEN r."externalCompanyId" || '@' || %(crm_org)s || '.Salesforce' END,
       r."name", (r."amount")::numeric,
       (r."isClosed")::boolean, (r."isWon")::boolean, r."stage",
       (r."closeDate")::date, (r."updatedAt")::timestamptz, false, b.extracted_at
FROM raw_marketo_opportunities r JOIN ops_ingest_batch b ON b.batch_id = r._batch_id
WHERE r._instance = %(instance)s AND r._batch_id = ANY (%(batch_ids)s)
ORDER BY r._source_key, b.extracted_at DESC, b.loaded_at DESC, r._ctid DESC
ON CONFLICT (source_key) DO UPDATE
SET crm_key = EXCLUDED.crm_key, account_key = EXCLUDED.account_key, name = EXCLUDED.name,
    amount = EXCLUDED.amount, is_closed = EXCLUDED.is_closed, is_won = EXCLUDED.is_won,
    stage = EXCLUDED.stage, close_date = EXCLUDED.close_date, updated_at = EXCLUDED.updated_at,
    is_deleted = EXCLUDED.is_deleted, extracted_at = EXCLUDED.extracted_at
WHERE c.extracted_at <= EXCLUDED.extracted_at
