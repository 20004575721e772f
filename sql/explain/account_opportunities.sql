-- The deals summed into an account's roll-ups, one row per deal however many systems report it.
SELECT opportunity_key, name, amount, is_closed, is_won, stage, close_date, source_keys
FROM profile_opportunity
WHERE account_id = %(account_id)s
ORDER BY close_date NULLS LAST, opportunity_key
