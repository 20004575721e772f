-- The deals of the accounts the condition looks at (a person's, or the one account)
-- that pass an opportunity condition's filter: those it aggregates.
SELECT pa.account_id, o.opportunity_key, o.name, o.amount, o.stage, o.is_closed, o.is_won, o.close_date
FROM {accounts} pa
JOIN profile_opportunity o ON o.account_id = pa.account_id AND {opportunity_filter}
ORDER BY pa.account_id, o.close_date NULLS LAST, o.opportunity_key
