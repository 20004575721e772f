-- A person's value of one profile attribute (a whitelisted profile column).
SELECT p.{column} AS value
FROM profile_person p
WHERE p.person_id = %(person_id)s
