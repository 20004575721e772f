-- An account's stored membership history in one account audience, newest first.
SELECT entered_at, exited_at
FROM audience_account_membership
WHERE segment_id = %(segment_id)s AND account_id = %(account_id)s
ORDER BY entered_at DESC
