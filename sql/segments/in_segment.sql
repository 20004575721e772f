EXISTS (SELECT 1 FROM audience_membership m
        WHERE m.segment_id = {segment_id} AND m.person_id = p.person_id AND m.exited_at IS NULL)
