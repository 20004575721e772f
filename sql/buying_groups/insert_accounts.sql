-- The accounts of a solution interest's account audience; the group id is <interest>/<account id>.
INSERT INTO bg_account (group_id, solution_interest, account_id, template_id)
SELECT %(solution_interest)s || '/' || a.account_id, %(solution_interest)s, a.account_id, %(template_id)s
FROM profile_account a
WHERE {condition}
