-- The account graph stands as it was: no account key changed its account.
CREATE TEMP TABLE stitch_account_changed (account_key text) ON COMMIT DROP;
