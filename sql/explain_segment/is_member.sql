-- Whether the segment's own compiled statement (select_members, with the profile exclusion)
-- selects this person at %(as_of)s.
SELECT EXISTS (SELECT 1 FROM ({members}) q WHERE q.person_id = %(person_id)s) AS member
