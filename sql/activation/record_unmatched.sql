-- A member looked up in this run and left without a lead, as its profile was at the lookup.
INSERT INTO activation_unmatched (destination_id, audience_key, person_id, email, unsubscribed, reason, looked_up_at)
SELECT %(destination_id)s, %(audience_key)s, p.person_id, p.email, p.unsubscribed, %(reason)s, %(looked_up_at)s
FROM profile_person p
WHERE p.person_id = %(person_id)s
ON CONFLICT (destination_id, audience_key, person_id) DO UPDATE
SET email = EXCLUDED.email, unsubscribed = EXCLUDED.unsubscribed, reason = EXCLUDED.reason,
    looked_up_at = EXCLUDED.looked_up_at
