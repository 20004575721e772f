-- The account audience of a solution interest: the accounts its (undissolved) buying groups are in.
SELECT g.account_id, a.mdm_id, a.name, a.website, g.complete, g.completeness
FROM buying_group g LEFT JOIN profile_account a ON a.account_id = g.account_id
WHERE g.solution_interest = %(solution_interest)s AND g.dissolved_at IS NULL
ORDER BY g.account_id
