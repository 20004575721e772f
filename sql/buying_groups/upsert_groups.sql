-- Every staged group exists and is live (a dissolved group whose account came back is revived).
INSERT INTO buying_group (group_id, solution_interest, account_id, template_id, formed_at, evaluated_at)
SELECT a.group_id, a.solution_interest, a.account_id, a.template_id, %(as_of)s, %(as_of)s
FROM bg_account a
ON CONFLICT (group_id) DO UPDATE
SET template_id = EXCLUDED.template_id, dissolved_at = NULL, evaluated_at = EXCLUDED.evaluated_at
