-- The members of one segment at %(as_of)s: every person satisfying the compiled condition.
-- Profiles over the identity or event guardrails are left out (and counted by the stitching run).
SELECT p.person_id
FROM profile_person p
WHERE p.excluded_reason IS NULL AND ({condition})
