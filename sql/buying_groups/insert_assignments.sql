-- Each person whose primary account is in the audience takes the first role, in the template's
-- priority order, whose condition they meet (CASE WHEN <condition> THEN <role> ...), and a person
-- matching no role is not a member. Profiles excluded by the guardrails are left out.
INSERT INTO bg_assignment (group_id, person_id, role)
SELECT q.group_id, q.person_id, q.role
FROM (SELECT a.group_id, p.person_id, CASE {role_cases} END AS role
      FROM profile_person p
      JOIN bg_account a ON a.account_id = p.primary_account_id AND a.solution_interest = %(solution_interest)s
      WHERE p.excluded_reason IS NULL) q
WHERE q.role IS NOT NULL
