-- Whether the account audience's own compiled statement (select_accounts) selects this account at
-- %(as_of)s.
SELECT EXISTS (SELECT 1 FROM ({members}) q WHERE q.account_id = %(account_id)s) AS member
