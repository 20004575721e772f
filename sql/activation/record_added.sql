INSERT INTO activation_state (destination_id, audience_key, person_id, member_key, payload_hash, synced_at)
VALUES (%(destination_id)s, %(audience_key)s, %(person_id)s, %(member_key)s, %(payload_hash)s, %(synced_at)s)
ON CONFLICT (destination_id, audience_key, person_id) DO UPDATE
SET member_key = EXCLUDED.member_key, payload_hash = EXCLUDED.payload_hash, synced_at = EXCLUDED.synced_at
