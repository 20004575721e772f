-- The people of an account, with how each relates to it.
SELECT pa.person_id, p.email, p.first_name, p.last_name, p.title,
       array_agg(pa.relation ORDER BY pa.relation) AS relations,
       coalesce(bool_or(p.primary_account_id = pa.account_id), false) AS is_primary,
       p.excluded_reason
FROM profile_person_account pa
LEFT JOIN profile_person p ON p.person_id = pa.person_id
WHERE pa.account_id = %(account_id)s
GROUP BY pa.person_id, p.email, p.first_name, p.last_name, p.title, p.excluded_reason
ORDER BY p.email NULLS LAST, pa.person_id
