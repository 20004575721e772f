DELETE FROM profile_person WHERE person_id IN (SELECT person_id FROM stitch_persons);
DELETE FROM profile_person_account WHERE person_id IN (SELECT person_id FROM stitch_persons);
