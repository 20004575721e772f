-- Source records carrying an email, whether or not any person holds them (for "not found" answers).
SELECT count(*) AS records, count(*) FILTER (WHERE is_deleted) AS deleted
FROM core_person
WHERE lower(btrim(email)) = lower(btrim(%(email)s))
