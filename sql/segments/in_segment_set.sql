p.person_id IN (SELECT m.person_id FROM audience_membership m
                WHERE m.segment_id = {segment_id} AND m.exited_at IS NULL)
