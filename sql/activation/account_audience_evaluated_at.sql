-- The evaluation an account audience reflects: its segment's latest, or its solution interest's
-- latest buying-group formation (the other parameter is NULL).
SELECT coalesce((SELECT max(evaluated_at) FROM audience_evaluation WHERE segment_id = %(segment_id)s),
                (SELECT max(evaluated_at) FROM buying_group WHERE solution_interest = %(solution_interest)s))
