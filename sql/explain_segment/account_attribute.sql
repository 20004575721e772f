-- Each account the condition looks at (a person's, or the one account) with its value
-- of one attribute (a whitelisted column) and whether that account meets the compiled comparison.
SELECT a.account_id, a.name, a.mdm_id, a.{column} AS value, ({comparison}) AS holds
FROM {accounts} pa
JOIN profile_account a ON a.account_id = pa.account_id
ORDER BY a.name, a.account_id
