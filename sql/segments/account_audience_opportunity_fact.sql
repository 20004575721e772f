EXISTS (SELECT 1 FROM segment_account_facts f WHERE f.account_id = a.account_id AND f.{column} {comparison})
