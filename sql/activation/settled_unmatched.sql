-- Members looked up since %(since)s and left without a lead, whose email and consent are unchanged:
-- another lookup would find what the last one found.
SELECT u.person_id, u.reason
FROM activation_unmatched u JOIN profile_person p ON p.person_id = u.person_id
WHERE u.destination_id = %(destination_id)s AND u.audience_key = %(audience_key)s
  AND u.looked_up_at > %(since)s
  AND u.email IS NOT DISTINCT FROM p.email AND u.unsubscribed = p.unsubscribed
