-- Whether the account graph or the account profiles can have changed since the previous run:
-- a changed account, cross-reference, deal or deal role, a withdrawn one, or a changed person
-- record pointing at an account key the graph does not know yet.
SELECT EXISTS (SELECT 1 FROM core_account WHERE changed_at > %(since)s)
    OR EXISTS (SELECT 1 FROM core_account_xref WHERE changed_at > %(since)s)
    OR EXISTS (SELECT 1 FROM core_opportunity WHERE changed_at > %(since)s)
    OR EXISTS (SELECT 1 FROM core_opportunity_person WHERE changed_at > %(since)s)
    OR EXISTS (SELECT 1 FROM identity_account_deletion WHERE deleted_at > %(since)s)
    OR EXISTS (SELECT 1 FROM stitch_changed c
               WHERE c.account_key IS NOT NULL
                 AND NOT EXISTS (SELECT 1 FROM identity_account_key k WHERE k.account_key = c.account_key))
