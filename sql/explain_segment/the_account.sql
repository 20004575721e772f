-- The account an account audience condition looks at: the account itself.
(SELECT %(account_id)s::text AS account_id)
