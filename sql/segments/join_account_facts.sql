LEFT JOIN segment_account_facts f ON f.account_id = pa.account_id
