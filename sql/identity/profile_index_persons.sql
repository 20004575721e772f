-- The indexes profile_reset_persons dropped, built over the profiles a full run wrote.
ALTER TABLE profile_person ADD CONSTRAINT profile_person_pkey PRIMARY KEY (person_id);
CREATE INDEX profile_person_email_idx ON profile_person (email);
ALTER TABLE profile_person_account ADD CONSTRAINT profile_person_account_pkey
    PRIMARY KEY (person_id, account_id, relation);
CREATE INDEX profile_person_account_account_id_idx ON profile_person_account (account_id);
DROP VIEW stitch_person_records;
