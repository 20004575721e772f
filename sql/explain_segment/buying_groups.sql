-- A person's current places in the live buying groups of one solution interest.
SELECT g.group_id, g.account_id, a.name AS account_name, m.role, m.entered_at, g.complete,
       g.completeness, g.missing_roles
FROM buying_group_member m
JOIN buying_group g ON g.group_id = m.group_id
LEFT JOIN profile_account a ON a.account_id = g.account_id
WHERE m.person_id = %(person_id)s AND m.exited_at IS NULL AND g.dissolved_at IS NULL
  AND g.solution_interest = %(solution_interest)s
ORDER BY g.group_id
