-- A person's graph: the identities its records carry, with the record carrying each.
SELECT l.namespace, l.value, l.record_key, l.joins, l.unique_scope, l.seen_at
FROM identity_link l
JOIN identity_record_person m ON m.record_key = l.record_key
WHERE m.person_id = %(person_id)s
ORDER BY l.namespace, l.value, l.record_key
