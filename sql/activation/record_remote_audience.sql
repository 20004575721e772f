INSERT INTO activation_remote_audience (destination_id, audience_key, remote_id, created_at)
VALUES (%(destination_id)s, %(audience_key)s, %(remote_id)s, %(created_at)s)
ON CONFLICT (destination_id, audience_key) DO UPDATE
SET remote_id = EXCLUDED.remote_id, created_at = EXCLUDED.created_at
