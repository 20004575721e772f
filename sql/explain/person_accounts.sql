-- A person's accounts with how it relates to each (the primary one first) and the account's roll-ups.
WITH related AS (
    SELECT account_id, relation FROM profile_person_account WHERE person_id = %(person_id)s
    UNION ALL
    SELECT primary_account_id, NULL FROM profile_person
    WHERE person_id = %(person_id)s AND primary_account_id IS NOT NULL
)
SELECT r.account_id, a.name, a.mdm_id,
       coalesce(array_agg(DISTINCT r.relation) FILTER (WHERE r.relation IS NOT NULL), '{}') AS relations,
       coalesce(bool_or(r.account_id = pp.primary_account_id), false) AS is_primary,
       a.closed_won_amount, a.open_pipeline_amount, a.opportunity_count, a.last_close_date
FROM related r
LEFT JOIN profile_account a ON a.account_id = r.account_id
LEFT JOIN profile_person pp ON pp.person_id = %(person_id)s
GROUP BY r.account_id, a.name, a.mdm_id, a.closed_won_amount, a.open_pipeline_amount,
         a.opportunity_count, a.last_close_date
ORDER BY is_primary DESC, a.name, r.account_id
