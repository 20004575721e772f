-- The profile attributes a new Marketo lead can be created from (scalar attributes only).
SELECT person_id, email, first_name, last_name, title, company, unsubscribed, created_at, updated_at
FROM profile_person
WHERE person_id = ANY (%(person_ids)s)
ORDER BY person_id
