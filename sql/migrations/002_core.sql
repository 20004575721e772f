-- Core: one row per source record, typed, keyed by its sourceKey (<id>@<instance>.<System>).
-- crm_key is the CRM record a Marketo record is synced with; account_key is the CRM (or Marketo)
-- key of the account a record belongs to.

CREATE TABLE core_person (
    source_key   text PRIMARY KEY,
    system       text NOT NULL,             -- Marketo | Salesforce
    instance     text NOT NULL,             -- munchkin id or CRM org id
    record_type  text NOT NULL,             -- lead | contact
    email        text,
    first_name   text,
    last_name    text,
    title        text,
    company      text,
    unsubscribed boolean NOT NULL DEFAULT false,
    crm_key      text,
    account_key  text,
    created_at   timestamptz,
    updated_at   timestamptz,
    is_deleted   boolean NOT NULL DEFAULT false,
    extracted_at timestamptz NOT NULL
);
CREATE INDEX ON core_person (lower(btrim(email)));

CREATE TABLE core_account (
    source_key     text PRIMARY KEY,
    system         text NOT NULL,
    instance       text NOT NULL,
    crm_key        text,
    name           text,
    website        text,
    industry       text,
    annual_revenue numeric,
    employees      integer,
    updated_at     timestamptz,
    is_deleted     boolean NOT NULL DEFAULT false,
    extracted_at   timestamptz NOT NULL
);

CREATE TABLE core_opportunity (
    source_key   text PRIMARY KEY,
    system       text NOT NULL,
    instance     text NOT NULL,
    crm_key      text,                      -- the same deal seen through Marketo and the CRM
    account_key  text,
    name         text,
    amount       numeric,
    is_closed    boolean,
    is_won       boolean,
    stage        text,
    close_date   date,
    updated_at   timestamptz,
    is_deleted   boolean NOT NULL DEFAULT false,
    extracted_at timestamptz NOT NULL
);

CREATE TABLE core_opportunity_person (
    source_key      text PRIMARY KEY,
    instance        text NOT NULL,
    opportunity_key text NOT NULL,
    person_key      text NOT NULL,
    role            text,
    is_primary      boolean,
    is_deleted      boolean NOT NULL DEFAULT false,
    extracted_at    timestamptz NOT NULL
);

CREATE TABLE core_event (
    source_key       text PRIMARY KEY,
    instance         text NOT NULL,
    person_key       text NOT NULL,
    activity_type_id integer,
    event_type       text,
    occurred_at      timestamptz NOT NULL,
    primary_value    text,
    url              text,
    attributes       jsonb,
    extracted_at     timestamptz NOT NULL
);
CREATE INDEX ON core_event (person_key, occurred_at);

CREATE TABLE core_account_xref (
    mdm_id      text NOT NULL,
    account_key text NOT NULL,
    name        text,
    extracted_at timestamptz NOT NULL,
    PRIMARY KEY (mdm_id, account_key)
);
