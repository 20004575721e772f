-- Each of a person's accounts with its value of one attribute (a whitelisted column) and
-- whether that account meets the compiled comparison.
SELECT a.account_id, a.name, a.mdm_id, a.{column} AS value, ({comparison}) AS holds
FROM (SELECT DISTINCT account_id FROM profile_person_account WHERE person_id = %(person_id)s) pa
JOIN profile_account a ON a.account_id = pa.account_id
ORDER BY a.name, a.account_id
