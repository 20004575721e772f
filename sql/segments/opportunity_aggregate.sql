EXISTS (SELECT 1 FROM profile_person_account pa
        LEFT JOIN profile_opportunity o ON o.account_id = pa.account_id AND {opportunity_filter}
        WHERE pa.person_id = p.person_id
        GROUP BY pa.account_id
        HAVING {aggregate} {comparison})
