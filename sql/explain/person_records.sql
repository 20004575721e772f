-- The source records behind a person, and deleted records that carried one of its identities (they
-- left the graph when their source deleted them).
WITH held AS (
    SELECT record_key FROM identity_record_person WHERE person_id = %(person_id)s
), identities AS (
    SELECT l.value FROM identity_link l JOIN held USING (record_key)
)
SELECT h.record_key, h.in_graph, p.system, p.instance, p.record_type, p.email, p.first_name, p.last_name,
       p.title, p.updated_at, p.is_deleted, p.crm_key, p.account_key
FROM (
    SELECT record_key, true AS in_graph FROM held
    UNION ALL
    SELECT d.source_key, false
    FROM core_person d
    WHERE d.is_deleted
      AND d.source_key NOT IN (SELECT record_key FROM held)
      AND (lower(btrim(d.email)) IN (SELECT value FROM identities)
           OR d.crm_key IN (SELECT value FROM identities)
           OR d.source_key IN (SELECT value FROM identities))
) h
LEFT JOIN core_person p ON p.source_key = h.record_key
ORDER BY h.in_graph DESC, h.record_key
