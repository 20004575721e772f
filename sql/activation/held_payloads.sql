-- What each member's lead was last sent (the lead id and the hash of its mapped attributes).
SELECT person_id, member_key, payload_hash
FROM activation_state
WHERE destination_id = %(destination_id)s AND audience_key = %(audience_key)s
