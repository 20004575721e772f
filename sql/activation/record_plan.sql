INSERT INTO activation_plan (destination_id, audience_key, run_id, person_id, action)
SELECT %(destination_id)s, %(audience_key)s, %(run_id)s, unnest(%(person_ids)s::text[]), %(action)s
ON CONFLICT DO NOTHING
