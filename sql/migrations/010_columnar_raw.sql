-- The data lake becomes columnar: one text column per source field, added as sources bring new
-- fields (a custom field appears without a code change), so a bulk file lands with one COPY straight
-- into its raw table instead of being converted row by row to jsonb (four times the cost of the COPY).
-- The batch's identity comes from transaction-local settings (cdp.batch_id, cdp.instance,
-- cdp.extracted_at) that the loader sets; the source key is computed from the record's own key.
-- Rows already landed as jsonb are carried over, every field of theirs becoming a column.

CREATE FUNCTION pg_temp.to_columnar(raw_table text, key_expression text, known_fields text[]) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    old_table text := raw_table || '_jsonb';
    field text;
    columns text;
    selected text;
BEGIN
    EXECUTE format('ALTER TABLE %I RENAME TO %I', raw_table, old_table);
    EXECUTE format('ALTER INDEX IF EXISTS %I RENAME TO %I', raw_table || '__batch_id_idx', old_table || '__batch_id_idx');
    EXECUTE format($t$
        CREATE TABLE %I (
            _batch_id     text        NOT NULL DEFAULT current_setting('cdp.batch_id'),
            _instance     text        NOT NULL DEFAULT current_setting('cdp.instance'),
            _extracted_at timestamptz NOT NULL DEFAULT current_setting('cdp.extracted_at')::timestamptz,
            _loaded_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
            _parse_error  text
        )$t$, raw_table);
    FOREACH field IN ARRAY known_fields LOOP
        EXECUTE format('ALTER TABLE %I ADD COLUMN %I text', raw_table, field);
    END LOOP;
    FOR field IN EXECUTE format('SELECT DISTINCT jsonb_object_keys(_record) FROM %I ORDER BY 1', old_table) LOOP
        IF left(field, 1) <> '_' THEN   -- _parse_error is already there
            EXECUTE format('ALTER TABLE %I ADD COLUMN IF NOT EXISTS %I text', raw_table, field);
        END IF;
    END LOOP;
    EXECUTE format('ALTER TABLE %I ADD COLUMN _source_key text GENERATED ALWAYS AS (%s) STORED',
                   raw_table, key_expression);
    -- Block-range index: batches are appended contiguously, and it costs next to nothing to keep.
    EXECUTE format('CREATE INDEX %I ON %I USING brin (_batch_id)', raw_table || '__batch_id_idx', raw_table);
    SELECT string_agg(format('%I', column_name), ', ' ORDER BY ordinal_position),
           string_agg(format('o._record->>%L', column_name), ', ' ORDER BY ordinal_position)
    INTO columns, selected
    FROM information_schema.columns
    WHERE table_schema = current_schema() AND table_name = raw_table
      AND column_name NOT IN ('_batch_id', '_instance', '_extracted_at', '_loaded_at', '_source_key');
    -- ->> gives scalars their text form and objects or arrays their JSON text.
    EXECUTE format('INSERT INTO %I (_batch_id, _instance, _extracted_at, _loaded_at, %s) '
                   'SELECT o._batch_id, o._instance, o._extracted_at, o._loaded_at, %s FROM %I o',
                   raw_table, columns, selected, old_table);
    EXECUTE format('DROP TABLE %I', old_table);
END
$fn$;

SELECT pg_temp.to_columnar('raw_marketo_leads', $$"id" || '@' || _instance || '.Marketo'$$,
    ARRAY['id', 'email', 'firstName', 'lastName', 'title', 'company', 'unsubscribed', 'sfdcAccountId',
          'sfdcContactId', 'sfdcLeadId', 'createdAt', 'updatedAt']);
SELECT pg_temp.to_columnar('raw_marketo_activities', $$"marketoGUID" || '@' || _instance || '.Marketo'$$,
    ARRAY['marketoGUID', 'leadId', 'activityDate', 'activityTypeId', 'primaryAttributeValueId',
          'primaryAttributeValue', 'attributes']);
SELECT pg_temp.to_columnar('raw_marketo_activity_types', $$"id" || '@' || _instance || '.Marketo'$$,
    ARRAY['id', 'name']);
SELECT pg_temp.to_columnar('raw_marketo_companies', $$"id" || '.mkto_org@' || _instance || '.Marketo'$$,
    ARRAY['id', 'externalCompanyId', 'company', 'website', 'industry', 'annualRevenue', 'numberOfEmployees',
          'updatedAt']);
SELECT pg_temp.to_columnar('raw_marketo_opportunities', $$"marketoGUID" || '@' || _instance || '.Marketo'$$,
    ARRAY['marketoGUID', 'externalOpportunityId', 'externalCompanyId', 'name', 'amount', 'stage', 'isClosed',
          'isWon', 'closeDate', 'updatedAt']);
SELECT pg_temp.to_columnar('raw_marketo_deleted_leads', $$"leadId" || '@' || _instance || '.Marketo'$$,
    ARRAY['id', 'leadId', 'activityDate']);
SELECT pg_temp.to_columnar('raw_salesforce_account', $$"Id" || '@' || _instance || '.Salesforce'$$,
    ARRAY['Id', 'Name', 'Website', 'Industry', 'AnnualRevenue', 'NumberOfEmployees', 'IsDeleted',
          'SystemModstamp']);
SELECT pg_temp.to_columnar('raw_salesforce_contact', $$"Id" || '@' || _instance || '.Salesforce'$$,
    ARRAY['Id', 'AccountId', 'Email', 'FirstName', 'LastName', 'Title', 'HasOptedOutOfEmail', 'CreatedDate',
          'IsDeleted', 'SystemModstamp']);
SELECT pg_temp.to_columnar('raw_salesforce_lead', $$"Id" || '@' || _instance || '.Salesforce'$$,
    ARRAY['Id', 'Email', 'FirstName', 'LastName', 'Title', 'Company', 'HasOptedOutOfEmail', 'CreatedDate',
          'IsConverted', 'ConvertedAccountId', 'ConvertedContactId', 'IsDeleted', 'SystemModstamp']);
SELECT pg_temp.to_columnar('raw_salesforce_opportunity', $$"Id" || '@' || _instance || '.Salesforce'$$,
    ARRAY['Id', 'AccountId', 'Name', 'Amount', 'StageName', 'IsClosed', 'IsWon', 'CloseDate', 'IsDeleted',
          'SystemModstamp']);
SELECT pg_temp.to_columnar('raw_salesforce_opportunitycontactrole', $$"Id" || '@' || _instance || '.Salesforce'$$,
    ARRAY['Id', 'OpportunityId', 'ContactId', 'Role', 'IsPrimary', 'IsDeleted', 'SystemModstamp']);
SELECT pg_temp.to_columnar('raw_mdm_crossref', $$"mdm_id" || ':' || "member_source_key"$$,
    ARRAY['mdm_id', 'member_source_key', 'name']);

DROP FUNCTION pg_temp.to_columnar(text, text, text[]);
