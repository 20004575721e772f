-- A person's stored membership history in one segment, newest first.
SELECT entered_at, exited_at
FROM audience_membership
WHERE segment_id = %(segment_id)s AND person_id = %(person_id)s
ORDER BY entered_at DESC
