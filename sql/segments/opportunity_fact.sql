p.person_id IN (SELECT pa.person_id FROM profile_person_account pa
                JOIN segment_account_facts f ON f.account_id = pa.account_id
                WHERE f.{column} {comparison})
