LEFT JOIN segment_person_account_facts pa ON pa.person_id = p.person_id
