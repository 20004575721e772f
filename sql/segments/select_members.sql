-- The members of one segment at %(as_of)s: every person satisfying the compiled condition.
SELECT p.person_id
FROM profile_person p
WHERE {condition}
