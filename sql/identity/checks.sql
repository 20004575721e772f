-- The stitching checkpoint's facts: one row per rule, with how many break it and one example.
SELECT 'no identity in two persons' AS rule, count(*) AS violations, min(namespace || ' ' || value) AS example
FROM (SELECT l.namespace, l.value
      FROM identity_link l JOIN identity_record_person m USING (record_key)
      WHERE l.joins
      GROUP BY l.namespace, l.value
      HAVING count(DISTINCT m.person_id) > 1) shared
UNION ALL
SELECT 'no link recorded twice', count(*), min(record_key || ' ' || namespace || ' ' || value)
FROM (SELECT record_key, namespace, value FROM identity_link
      GROUP BY record_key, namespace, value
      HAVING count(*) > 1) doubled
UNION ALL
SELECT 'no person over the identity limit', count(*), min(person_id)
FROM identity_person WHERE retired_at IS NULL AND identities > %(max_identities)s
UNION ALL
SELECT 'every profile traceable to source records', count(*), min(pp.person_id)
FROM profile_person pp
WHERE NOT EXISTS (SELECT 1 FROM identity_record_person m
                  JOIN core_person p ON p.source_key = m.record_key AND NOT p.is_deleted
                  WHERE m.person_id = pp.person_id)
UNION ALL
SELECT 'account roll-ups equal the sum of their opportunities', count(*), min(a.account_id)
FROM profile_account a
LEFT JOIN (SELECT account_id, sum(amount) FILTER (WHERE is_won) AS won,
                  sum(amount) FILTER (WHERE NOT is_closed) AS open, count(*) AS deals
           FROM profile_opportunity GROUP BY account_id) o USING (account_id)
WHERE a.closed_won_amount <> coalesce(o.won, 0) OR a.open_pipeline_amount <> coalesce(o.open, 0)
   OR a.opportunity_count <> coalesce(o.deals, 0)
UNION ALL
SELECT 'MDM cross-references unique per CRM org', count(*), min(mdm_id || ' ' || org)
FROM (SELECT mdm_id, split_part(account_key, '@', 2) AS org
      FROM core_account_xref
      GROUP BY 1, 2
      HAVING count(DISTINCT account_key) > 1) doubled
