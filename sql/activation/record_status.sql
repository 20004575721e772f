INSERT INTO activation_record_status (destination_id, audience_key, person_id, action, status, reason, run_id)
VALUES (%(destination_id)s, %(audience_key)s, %(person_id)s, %(action)s, %(status)s, %(reason)s, %(run_id)s)
ON CONFLICT (destination_id, audience_key, person_id, action) DO UPDATE
SET status = EXCLUDED.status, reason = EXCLUDED.reason, run_id = EXCLUDED.run_id
