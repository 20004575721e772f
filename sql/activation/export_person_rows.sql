SELECT m.person_id, p.email, p.first_name, p.last_name
FROM audience_membership m JOIN profile_person p ON p.person_id = m.person_id
WHERE m.segment_id = %(segment_id)s AND m.exited_at IS NULL
ORDER BY m.person_id
