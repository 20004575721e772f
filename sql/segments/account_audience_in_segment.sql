EXISTS (SELECT 1 FROM audience_account_membership m
        WHERE m.segment_id = {segment_id} AND m.account_id = a.account_id AND m.exited_at IS NULL)
