-- A full run rebuilds every person profile: the tables are emptied and their indexes built once
-- after filling (profile_index_persons), not row by row.
TRUNCATE profile_person, profile_person_account;
ALTER TABLE profile_person DROP CONSTRAINT profile_person_pkey;
DROP INDEX profile_person_email_idx;
ALTER TABLE profile_person_account DROP CONSTRAINT profile_person_account_pkey;
DROP INDEX profile_person_account_account_id_idx;
