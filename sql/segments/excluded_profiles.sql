-- Profiles over the identity or event guardrails, left out of every segment (counted per evaluation).
SELECT count(*) FROM profile_person WHERE excluded_reason IS NOT NULL
