-- A member's lead took the attributes whose hash this is.
UPDATE activation_state
SET payload_hash = %(payload_hash)s, synced_at = %(synced_at)s
WHERE destination_id = %(destination_id)s AND audience_key = %(audience_key)s AND person_id = %(person_id)s
