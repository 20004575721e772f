-- Persons (and those the guardrails exclude, in the same scan) and accounts.
SELECT p.persons, (SELECT count(*) FROM profile_account), p.excluded
FROM (SELECT count(*) AS persons, count(*) FILTER (WHERE excluded_reason IS NOT NULL) AS excluded
      FROM profile_person) p
