-- The persons an email identifies: those with a record carrying it (normalised: trimmed, lower-cased),
-- an accepted email link to it, or a profile showing it. Several when the rules kept records apart.
WITH wanted AS (SELECT lower(btrim(%(email)s)) AS email)
SELECT m.person_id
FROM core_person p
JOIN identity_record_person m ON m.record_key = p.source_key, wanted
WHERE lower(btrim(p.email)) = wanted.email
UNION
SELECT m.person_id
FROM identity_link l
JOIN identity_record_person m ON m.record_key = l.record_key, wanted
WHERE l.namespace = 'email' AND l.value = wanted.email
UNION
SELECT pp.person_id FROM profile_person pp, wanted WHERE pp.email = wanted.email
ORDER BY 1
