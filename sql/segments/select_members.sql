-- The members of one segment at %(as_of)s: every person satisfying the compiled condition.
-- Profiles over the identity or event guardrails are left out (and counted by the stitching run).
-- A pass's form of the condition reads the facts tables joined after `p` (none otherwise).
SELECT p.person_id
FROM profile_person p {facts}
WHERE p.excluded_reason IS NULL AND ({condition})
