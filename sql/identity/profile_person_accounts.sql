-- Person-account relations of the rebuilt persons: direct (the account of their records) and
-- through opportunity contact roles. Many to many.
INSERT INTO profile_person_account (person_id, account_id, relation)
SELECT DISTINCT m.person_id, ak.account_id, 'direct'
FROM core_person p
JOIN stitch_person_records m ON m.record_key = p.source_key
JOIN identity_account_key ak ON ak.account_key = p.account_key
WHERE NOT p.is_deleted
UNION
SELECT DISTINCT m.person_id, po.account_id, 'opportunity_role'
FROM core_opportunity_person r
JOIN stitch_person_records m ON m.record_key = r.person_key
JOIN core_opportunity o ON o.source_key = r.opportunity_key AND NOT o.is_deleted
JOIN profile_opportunity po ON po.opportunity_key = coalesce(o.crm_key, o.source_key)
WHERE NOT r.is_deleted AND po.account_id IS NOT NULL;
