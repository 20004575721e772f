-- Account profiles, rebuilt whole each run: one row per deal however many systems report it, and
-- each account's roll-ups across every CRM. Set-based throughout (no per-row subqueries).
TRUNCATE profile_opportunity, profile_account;

-- One row per deal: Marketo and the CRM may both report it; the most recent report wins.
INSERT INTO profile_opportunity (opportunity_key, account_id, name, amount, is_closed, is_won, stage,
                                 close_date, source_keys)
WITH deals AS (
    SELECT o.*, coalesce(o.crm_key, o.source_key) AS deal_key FROM core_opportunity o WHERE NOT o.is_deleted
), reports AS (
    SELECT deal_key, array_agg(source_key ORDER BY source_key) AS source_keys FROM deals GROUP BY deal_key
)
SELECT DISTINCT ON (d.deal_key)
       d.deal_key, ak.account_id, d.name, d.amount, d.is_closed, d.is_won, d.stage, d.close_date, r.source_keys
FROM deals d
JOIN reports r USING (deal_key)
LEFT JOIN identity_account_key ak ON ak.account_key = d.account_key
ORDER BY d.deal_key, d.updated_at DESC NULLS LAST, d.source_key;

INSERT INTO profile_account (account_id, mdm_id, name, website, industry, annual_revenue, employees,
                             closed_won_amount, open_pipeline_amount, opportunity_count, last_close_date,
                             source_keys)
WITH ids AS (
    SELECT account_id,
           array_agg(account_key ORDER BY account_key)
               FILTER (WHERE account_key NOT LIKE 'mdm:%' AND account_key NOT LIKE 'domain:%') AS keys
    FROM identity_account_key GROUP BY account_id
), latest AS (        -- the most recently updated source record of each account
    SELECT DISTINCT ON (k.account_id) k.account_id, c.name, c.website, c.industry, c.annual_revenue, c.employees
    FROM core_account c JOIN identity_account_key k ON k.account_key = c.source_key
    WHERE NOT c.is_deleted
    ORDER BY k.account_id, c.updated_at DESC NULLS LAST, c.source_key
), golden AS (
    SELECT k.account_id, min(x.mdm_id) AS mdm_id, min(x.name) AS name
    FROM core_account_xref x JOIN identity_account_key k ON k.account_key = x.account_key
    GROUP BY k.account_id
), rollup AS (
    SELECT account_id,
           sum(amount) FILTER (WHERE is_won) AS closed_won,
           sum(amount) FILTER (WHERE NOT is_closed) AS open_pipeline,
           count(*) AS deals,
           max(close_date) FILTER (WHERE is_closed) AS last_close
    FROM profile_opportunity GROUP BY account_id
)
SELECT ids.account_id, g.mdm_id, coalesce(g.name, a.name), a.website, a.industry, a.annual_revenue, a.employees,
       coalesce(o.closed_won, 0), coalesce(o.open_pipeline, 0), coalesce(o.deals, 0), o.last_close, ids.keys
FROM ids
LEFT JOIN latest a USING (account_id)
LEFT JOIN golden g USING (account_id)
LEFT JOIN rollup o USING (account_id);
