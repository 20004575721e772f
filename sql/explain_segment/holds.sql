-- Whether one compiled condition of the audience language (from b2b_cdp.segments'
-- ConditionCompiler, values bound) holds for one person at %(as_of)s. NULL: it compared a missing value.
SELECT ({condition}) AS holds
FROM profile_person p
WHERE p.person_id = %(person_id)s
