-- The account facts' key (an account has one row), and statistics for the joins that read them.
CREATE UNIQUE INDEX ON segment_account_facts (account_id);
ANALYZE segment_account_facts;
