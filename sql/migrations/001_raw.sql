-- The data lake: append-only landing, one table per source object. The record is kept whole
-- (jsonb) so a field added at the source lands without a schema change; normalisation picks
-- the fields it knows. A batch is replaced as a whole when its task is re-run.

CREATE TABLE raw_marketo_leads (
    _source_key   text        NOT NULL,
    _instance     text        NOT NULL,
    _batch_id     text        NOT NULL,
    _extracted_at timestamptz NOT NULL,
    _loaded_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    _record       jsonb       NOT NULL
);
CREATE INDEX ON raw_marketo_leads (_batch_id);
CREATE INDEX ON raw_marketo_leads (_source_key, _extracted_at DESC);

CREATE TABLE raw_marketo_activities (
    _source_key   text        NOT NULL,
    _instance     text        NOT NULL,
    _batch_id     text        NOT NULL,
    _extracted_at timestamptz NOT NULL,
    _loaded_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    _record       jsonb       NOT NULL
);
CREATE INDEX ON raw_marketo_activities (_batch_id);
CREATE INDEX ON raw_marketo_activities (_source_key, _extracted_at DESC);

CREATE TABLE raw_marketo_activity_types (
    _source_key   text        NOT NULL,
    _instance     text        NOT NULL,
    _batch_id     text        NOT NULL,
    _extracted_at timestamptz NOT NULL,
    _loaded_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    _record       jsonb       NOT NULL
);
CREATE INDEX ON raw_marketo_activity_types (_batch_id);
CREATE INDEX ON raw_marketo_activity_types (_source_key, _extracted_at DESC);

CREATE TABLE raw_marketo_companies (
    _source_key   text        NOT NULL,
    _instance     text        NOT NULL,
    _batch_id     text        NOT NULL,
    _extracted_at timestamptz NOT NULL,
    _loaded_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    _record       jsonb       NOT NULL
);
CREATE INDEX ON raw_marketo_companies (_batch_id);
CREATE INDEX ON raw_marketo_companies (_source_key, _extracted_at DESC);

CREATE TABLE raw_marketo_opportunities (
    _source_key   text        NOT NULL,
    _instance     text        NOT NULL,
    _batch_id     text        NOT NULL,
    _extracted_at timestamptz NOT NULL,
    _loaded_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    _record       jsonb       NOT NULL
);
CREATE INDEX ON raw_marketo_opportunities (_batch_id);
CREATE INDEX ON raw_marketo_opportunities (_source_key, _extracted_at DESC);

CREATE TABLE raw_salesforce_account (
    _source_key   text        NOT NULL,
    _instance     text        NOT NULL,
    _batch_id     text        NOT NULL,
    _extracted_at timestamptz NOT NULL,
    _loaded_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    _record       jsonb       NOT NULL
);
CREATE INDEX ON raw_salesforce_account (_batch_id);
CREATE INDEX ON raw_salesforce_account (_source_key, _extracted_at DESC);

CREATE TABLE raw_salesforce_contact (
    _source_key   text        NOT NULL,
    _instance     text        NOT NULL,
    _batch_id     text        NOT NULL,
    _extracted_at timestamptz NOT NULL,
    _loaded_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    _record       jsonb       NOT NULL
);
CREATE INDEX ON raw_salesforce_contact (_batch_id);
CREATE INDEX ON raw_salesforce_contact (_source_key, _extracted_at DESC);

CREATE TABLE raw_salesforce_lead (
    _source_key   text        NOT NULL,
    _instance     text        NOT NULL,
    _batch_id     text        NOT NULL,
    _extracted_at timestamptz NOT NULL,
    _loaded_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    _record       jsonb       NOT NULL
);
CREATE INDEX ON raw_salesforce_lead (_batch_id);
CREATE INDEX ON raw_salesforce_lead (_source_key, _extracted_at DESC);

CREATE TABLE raw_salesforce_opportunity (
    _source_key   text        NOT NULL,
    _instance     text        NOT NULL,
    _batch_id     text        NOT NULL,
    _extracted_at timestamptz NOT NULL,
    _loaded_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    _record       jsonb       NOT NULL
);
CREATE INDEX ON raw_salesforce_opportunity (_batch_id);
CREATE INDEX ON raw_salesforce_opportunity (_source_key, _extracted_at DESC);

CREATE TABLE raw_salesforce_opportunitycontactrole (
    _source_key   text        NOT NULL,
    _instance     text        NOT NULL,
    _batch_id     text        NOT NULL,
    _extracted_at timestamptz NOT NULL,
    _loaded_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    _record       jsonb       NOT NULL
);
CREATE INDEX ON raw_salesforce_opportunitycontactrole (_batch_id);
CREATE INDEX ON raw_salesforce_opportunitycontactrole (_source_key, _extracted_at DESC);

CREATE TABLE raw_mdm_crossref (
    _source_key   text        NOT NULL,
    _instance     text        NOT NULL,
    _batch_id     text        NOT NULL,
    _extracted_at timestamptz NOT NULL,
    _loaded_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    _record       jsonb       NOT NULL
);
CREATE INDEX ON raw_mdm_crossref (_batch_id);
CREATE INDEX ON raw_mdm_crossref (_source_key, _extracted_at DESC);
