-- Unified profiles from the stitched records. Attributes: the most recently updated record that
-- has a value wins; consent is conservative (unsubscribed anywhere means unsubscribed).
TRUNCATE profile_person, profile_account, profile_opportunity, profile_person_account;

INSERT INTO profile_person (person_id, email, first_name, last_name, title, company, unsubscribed,
                            created_at, updated_at, primary_account_id, source_keys, identity_map)
SELECT m.person_id,
       (array_agg(lower(btrim(p.email)) ORDER BY p.updated_at DESC NULLS LAST, p.source_key)
            FILTER (WHERE nullif(btrim(p.email), '') IS NOT NULL))[1],
       (array_agg(p.first_name ORDER BY p.updated_at DESC NULLS LAST, p.source_key) FILTER (WHERE p.first_name IS NOT NULL))[1],
       (array_agg(p.last_name ORDER BY p.updated_at DESC NULLS LAST, p.source_key) FILTER (WHERE p.last_name IS NOT NULL))[1],
       (array_agg(p.title ORDER BY p.updated_at DESC NULLS LAST, p.source_key) FILTER (WHERE p.title IS NOT NULL))[1],
       (array_agg(p.company ORDER BY p.updated_at DESC NULLS LAST, p.source_key) FILTER (WHERE p.company IS NOT NULL))[1],
       bool_or(p.unsubscribed),
       min(p.created_at), max(p.updated_at),
       (array_agg(ak.account_id ORDER BY p.updated_at DESC NULLS LAST, p.source_key) FILTER (WHERE ak.account_id IS NOT NULL))[1],
       array_agg(p.source_key ORDER BY p.source_key),
       '{}'::jsonb
FROM core_person p
JOIN identity_record_person m ON m.record_key = p.source_key
LEFT JOIN identity_account_key ak ON ak.account_key = p.account_key
WHERE NOT p.is_deleted
GROUP BY m.person_id;

UPDATE profile_person pp
SET identity_map = ids.map
FROM (
    SELECT person_id, jsonb_object_agg(namespace, ids) AS map
    FROM (
        SELECT m.person_id, l.namespace, jsonb_agg(DISTINCT l.value) AS ids
        FROM identity_link l JOIN identity_record_person m ON m.record_key = l.record_key
        GROUP BY m.person_id, l.namespace
        UNION ALL
        SELECT m.person_id, 'source_key', jsonb_agg(m.record_key)
        FROM identity_record_person m GROUP BY m.person_id
    ) per_namespace
    GROUP BY person_id
) ids
WHERE ids.person_id = pp.person_id;

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
    SELECT account_id, array_agg(account_key ORDER BY account_key) FILTER (WHERE account_key NOT LIKE 'mdm:%') AS keys
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

INSERT INTO profile_person_account (person_id, account_id, relation)
SELECT DISTINCT m.person_id, ak.account_id, 'direct'
FROM core_person p
JOIN identity_record_person m ON m.record_key = p.source_key
JOIN identity_account_key ak ON ak.account_key = p.account_key
WHERE NOT p.is_deleted
UNION
SELECT DISTINCT m.person_id, po.account_id, 'opportunity_role'
FROM core_opportunity_person r
JOIN identity_record_person m ON m.record_key = r.person_key
JOIN core_opportunity o ON o.source_key = r.opportunity_key AND NOT o.is_deleted
JOIN profile_opportunity po ON po.opportunity_key = coalesce(o.crm_key, o.source_key)
WHERE NOT r.is_deleted AND po.account_id IS NOT NULL;
