EXISTS (SELECT 1
        FROM (SELECT DISTINCT account_id FROM profile_person_account
              WHERE person_id = p.person_id) pa      -- one row per account, whatever the relation
        LEFT JOIN profile_opportunity o ON o.account_id = pa.account_id AND {opportunity_filter}
        GROUP BY pa.account_id
        HAVING {aggregate} {comparison})
