DELETE FROM activation_state
WHERE destination_id = %(destination_id)s AND audience_key = %(audience_key)s
