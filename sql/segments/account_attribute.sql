EXISTS (SELECT 1 FROM profile_person_account pa JOIN profile_account a ON a.account_id = pa.account_id
        WHERE pa.person_id = p.person_id AND a.{column} {comparison})
