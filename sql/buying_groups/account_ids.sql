(a.account_id = ANY({ids}) OR a.mdm_id = ANY({ids})
 OR EXISTS (SELECT 1 FROM identity_account_key k WHERE k.account_id = a.account_id AND k.account_key = ANY({ids})))
