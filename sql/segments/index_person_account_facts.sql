-- The person-account facts' key (a person has one row), and statistics for the scan that joins them.
CREATE UNIQUE INDEX ON segment_person_account_facts (person_id);
ANALYZE segment_person_account_facts;
