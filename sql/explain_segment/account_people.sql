-- The people of an account, each with whether it meets a compiled person condition at %(as_of)s
-- (a profile the guardrails exclude never counts for the account, whatever it meets).
SELECT p.person_id, p.email, p.first_name, p.last_name, p.title, p.excluded_reason,
       array_agg(pa.relation ORDER BY pa.relation) AS relations, ({condition}) AS holds
FROM profile_person_account pa
JOIN profile_person p ON p.person_id = pa.person_id
WHERE pa.account_id = %(account_id)s
GROUP BY p.person_id
ORDER BY p.email NULLS LAST, p.person_id
