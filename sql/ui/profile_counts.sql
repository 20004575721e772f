-- People and accounts in the sandbox's profiles; excluded persons are those the guardrails leave
-- out of segmentation.
SELECT (SELECT count(*) FROM profile_person)                                  AS persons,
       (SELECT count(*) FROM profile_person WHERE excluded_reason IS NOT NULL) AS excluded_persons,
       (SELECT count(*) FROM profile_account)                                 AS accounts
