-- Links of a person's records that a rule refused, with the rule as the reason.
SELECT r.record_key, r.namespace, r.value, r.reason, r.run_id, r.rejected_at
FROM identity_rejected_link r
JOIN identity_record_person m ON m.record_key = r.record_key
WHERE m.person_id = %(person_id)s
ORDER BY r.record_key, r.namespace, r.value
