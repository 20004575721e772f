-- Whether one compiled account audience condition (from b2b_cdp.segments' ConditionCompiler, values
-- bound) holds for one account at %(as_of)s. NULL: it compared a missing value.
SELECT ({condition}) AS holds
FROM profile_account a
WHERE a.account_id = %(account_id)s
