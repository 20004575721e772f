-- Incremental stitching skips the account graph when nothing on the account side changed since the
-- previous run: accounts, MDM cross-references, deals and deal roles carry changed_at (moved only
-- by a real change), and any deletion among them leaves a trace.
CREATE TABLE identity_account_deletion (deleted_at timestamptz NOT NULL DEFAULT clock_timestamp());

CREATE FUNCTION note_account_deletion() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM gone) THEN
        INSERT INTO identity_account_deletion DEFAULT VALUES;
    END IF;
    RETURN NULL;
END $$;

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['core_account', 'core_account_xref', 'core_opportunity', 'core_opportunity_person'] LOOP
        EXECUTE format('ALTER TABLE %I ADD COLUMN changed_at timestamptz NOT NULL DEFAULT clock_timestamp()', t);
        EXECUTE format('CREATE INDEX ON %I (changed_at)', t);
        EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE ON %I FOR EACH ROW WHEN (OLD IS DISTINCT FROM NEW) '
                       'EXECUTE FUNCTION touch_changed_at()', t || '_changed', t);
        EXECUTE format('CREATE TRIGGER %I AFTER DELETE ON %I REFERENCING OLD TABLE AS gone FOR EACH STATEMENT '
                       'EXECUTE FUNCTION note_account_deletion()', t || '_deleted', t);
    END LOOP;
END $$;

-- A run under different linking rules judges every link afresh (a full run).
ALTER TABLE identity_run ADD COLUMN rules_hash text;
