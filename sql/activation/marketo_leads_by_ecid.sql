-- Members' Marketo leads found by ECID: a live lead of the instance whose `ecids` field holds one
-- of the person's ECIDs from the identity graph. Marketo writes the field as
-- "<prefix>:<ecid> <ecid> ..." (Experience Platform's Marketo mapping splits it the same way); the
-- newest landed version of each lead counts, and when several leads match a person the most
-- recently updated wins.
WITH person_ecid AS (
    SELECT rp.person_id, l.value AS ecid
    FROM identity_link l JOIN identity_record_person rp ON rp.record_key = l.record_key
    WHERE l.namespace = 'ecid' AND rp.person_id = ANY (%(person_ids)s)
), lead AS (
    SELECT DISTINCT ON (r._source_key) r._source_key, r."id" AS lead_id, r."updatedAt" AS updated_at, r."ecids"
    FROM raw_marketo_leads r JOIN ops_ingest_batch b ON b.batch_id = r._batch_id
    WHERE r._instance = %(instance)s
    ORDER BY r._source_key, b.extracted_at DESC, b.loaded_at DESC, r._ctid DESC
), lead_ecid AS (
    SELECT lead._source_key, lead.lead_id, lead.updated_at, e.ecid
    FROM lead CROSS JOIN LATERAL
         regexp_split_to_table(btrim(regexp_replace(lead."ecids", '^.*:', '')), '\s+') AS e(ecid)
    WHERE lead."ecids" IS NOT NULL
)
SELECT DISTINCT ON (p.person_id) p.person_id, le.lead_id::bigint
FROM person_ecid p JOIN lead_ecid le ON le.ecid = p.ecid
WHERE NOT EXISTS (SELECT 1 FROM core_person c WHERE c.source_key = le._source_key AND c.is_deleted)
ORDER BY p.person_id, le.updated_at DESC NULLS LAST, le.lead_id::bigint DESC
