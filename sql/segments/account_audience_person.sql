EXISTS (SELECT 1 FROM profile_person_account pa JOIN profile_person p ON p.person_id = pa.person_id
        WHERE pa.account_id = a.account_id AND p.excluded_reason IS NULL AND ({condition}))
