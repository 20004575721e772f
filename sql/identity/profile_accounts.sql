-- Account profiles, rebuilt whole each run (accounts are few): one row per deal however many
-- systems report it, and each account's roll-ups across every CRM.
TRUNCATE profile_opportunity, profile_account;

-- One row per deal: Marketo and the CRM may both report it; the most recent report wins.
INSERT INTO profile_opportunity (opportunity_key, account_id, name, amount, is_closed, is_won, stage,
                                 close_date, source_keys)
SELECT DISTINCT ON (coalesce(o.crm_key, o.source_key))
       coalesce(o.crm_key, o.source_key), ak.account_id, o.name, o.amount, o.is_closed, o.is_won,
       o.stage, o.close_date,
       array(SELECT o2.source_key FROM core_opportunity o2
             WHERE coalesce(o2.crm_key, o2.source_key) = coalesce(o.crm_key, o.source_key) AND NOT o2.is_deleted
             ORDER BY o2.source_key)
FROM core_opportunity o
LEFT JOIN identity_account_key ak ON ak.account_key = o.account_key
WHERE NOT o.is_deleted
ORDER BY coalesce(o.crm_key, o.source_key), o.updated_at DESC NULLS LAST, o.source_key;

INSERT INTO profile_account (account_id, mdm_id, name, website, industry, annual_revenue, employees,
                             closed_won_amount, open_pipeline_amount, opportunity_count, last_close_date,
                             source_keys)
SELECT ids.account_id,
       x.mdm_id,
       coalesce(x.name, a.name), a.website, a.industry, a.annual_revenue, a.employees,
       coalesce(o.closed_won, 0), coalesce(o.open_pipeline, 0), coalesce(o.deals, 0), o.last_close,
       ids.keys
FROM (
    SELECT account_id, array_agg(account_key ORDER BY account_key) FILTER (WHERE account_key NOT LIKE 'mdm:%' AND account_key NOT LIKE 'domain:%') AS keys
    FROM identity_account_key GROUP BY account_id
) ids
LEFT JOIN LATERAL (
    SELECT c.name, c.website, c.industry, c.annual_revenue, c.employees
    FROM core_account c JOIN identity_account_key k ON k.account_key = c.source_key
    WHERE k.account_id = ids.account_id AND NOT c.is_deleted
    ORDER BY c.updated_at DESC NULLS LAST, c.source_key
    LIMIT 1
) a ON true
LEFT JOIN LATERAL (
    SELECT min(xr.mdm_id) AS mdm_id, min(xr.name) AS name
    FROM core_account_xref xr JOIN identity_account_key k ON k.account_key = xr.account_key
    WHERE k.account_id = ids.account_id
) x ON true
LEFT JOIN (
    SELECT account_id,
           sum(amount) FILTER (WHERE is_won) AS closed_won,
           sum(amount) FILTER (WHERE NOT is_closed) AS open_pipeline,
           count(*) AS deals,
           max(close_date) FILTER (WHERE is_closed) AS last_close
    FROM profile_opportunity GROUP BY account_id
) o ON o.account_id = ids.account_id;
