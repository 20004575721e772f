-- Each account the condition looks at (a person's, or the one account) with the
-- aggregate of its deals that pass the condition's filter, and whether that total meets the
-- comparison (as sql/segments/opportunity_aggregate.sql reads them).
SELECT pa.account_id, a.name, a.mdm_id, {aggregate} AS total, ({comparison}) AS holds,
       count(o.opportunity_key) AS deals
FROM {accounts} pa
LEFT JOIN profile_account a ON a.account_id = pa.account_id
LEFT JOIN profile_opportunity o ON o.account_id = pa.account_id AND {opportunity_filter}
GROUP BY pa.account_id, a.name, a.mdm_id
ORDER BY a.name, pa.account_id
