EXISTS (SELECT 1 FROM profile_person_account pa JOIN segment_account_facts f ON f.account_id = pa.account_id
        WHERE pa.person_id = p.person_id AND f.{column} {comparison})
