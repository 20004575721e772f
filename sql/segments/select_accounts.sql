-- The members of one account audience at %(as_of)s: every account satisfying the compiled condition
-- (`a` is the account; conditions on its people leave out the profiles the guardrails exclude).
SELECT a.account_id
FROM profile_account a
WHERE ({condition})
