SELECT (SELECT count(*) FROM profile_person), (SELECT count(*) FROM profile_account),
       (SELECT count(*) FROM profile_person WHERE excluded_reason IS NOT NULL)
