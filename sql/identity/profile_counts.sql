SELECT (SELECT count(*) FROM profile_person), (SELECT count(*) FROM profile_account)
