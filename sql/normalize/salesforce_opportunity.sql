INSERT INTO core_opportunity AS c (source_key, system, instance, crm_key, account_key, name, amount,
                                   is_closed, is_won, stage, close_date, updated_at, is_deleted, extracted_at)
SELECT DISTINCT ON (r._source_key)
       r._source_key, 'Salesforce', r._instance, r._source_key,
       CASE WHEN r."AccountId" IS NOT NULL
            THEN (r."AccountId") || '@' || r._instance || '.Salesforce' END,
       r."Name", (r."Amount")::numeric,
       (r."IsClosed")::boolean, (r."IsWon")::boolean, r."StageName",
       (r."CloseDate")::date, (r."SystemModstamp")::timestamptz,
       coalesce((r."IsDeleted")::boolean, false), b.extracted_at
FROM raw_salesforce_opportunity r JOIN ops_ingest_batch b ON b.batch_id = r._batch_id
WHERE r._instance = %(instance)s AND r._batch_id = ANY (%(batch_ids)s)
ORDER BY r._source_key, b.extracted_at DESC, b.loaded_at DESC, r._ctid DESC
ON CONFLICT (source_key) DO UPDATE
SET account_key = EXCLUDED.account_key, name = EXCLUDED.name, amount = EXCLUDED.amount,
    is_closed = EXCLUDED.is_closed, is_won = EXCLUDED.is_won, stage = EXCLUDED.stage,
    close_date = EXCLUDED.close_date, updated_at = EXCLUDED.updated_at,
    is_deleted = EXCLUDED.is_deleted, extracted_at = EXCLUDED.extracted_at
WHERE c.extracted_at <= EXCLUDED.extracted_at
