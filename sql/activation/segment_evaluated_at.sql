SELECT max(evaluated_at) FROM audience_evaluation WHERE segment_id = %(segment_id)s
