SELECT remote_id
FROM activation_remote_audience
WHERE destination_id = %(destination_id)s AND audience_key = %(audience_key)s
