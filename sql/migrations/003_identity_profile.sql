-- Identity graph and unified profiles.

CREATE TABLE identity_link (
    record_key text NOT NULL,                -- the core record carrying the identity
    namespace  text NOT NULL,                -- email | crm | marketo
    value      text NOT NULL,
    PRIMARY KEY (record_key, namespace, value)
);
CREATE INDEX ON identity_link (namespace, value);

CREATE TABLE identity_record_person (
    record_key text PRIMARY KEY,
    person_id  text NOT NULL
);
CREATE INDEX ON identity_record_person (person_id);

CREATE TABLE identity_account_key (
    account_key text PRIMARY KEY,            -- any key an account is known by (CRM, Marketo, MDM)
    account_id  text NOT NULL
);
CREATE INDEX ON identity_account_key (account_id);

CREATE TABLE profile_person (
    person_id          text PRIMARY KEY,
    email              text,
    first_name         text,
    last_name          text,
    title              text,
    company            text,
    unsubscribed       boolean NOT NULL,
    created_at         timestamptz,
    updated_at         timestamptz,
    primary_account_id text,
    source_keys        text[] NOT NULL,
    identity_map       jsonb NOT NULL
);
CREATE INDEX ON profile_person (email);

CREATE TABLE profile_account (
    account_id           text PRIMARY KEY,
    mdm_id               text,
    name                 text,
    website              text,
    industry             text,
    annual_revenue       numeric,
    employees            integer,
    closed_won_amount    numeric NOT NULL,
    open_pipeline_amount numeric NOT NULL,
    opportunity_count    integer NOT NULL,
    last_close_date      date,
    source_keys          text[] NOT NULL
);

-- One row per deal, however many systems report it (deduplicated on the CRM key).
CREATE TABLE profile_opportunity (
    opportunity_key text PRIMARY KEY,
    account_id      text,
    name            text,
    amount          numeric,
    is_closed       boolean,
    is_won          boolean,
    stage           text,
    close_date      date,
    source_keys     text[] NOT NULL
);
CREATE INDEX ON profile_opportunity (account_id);

CREATE TABLE profile_person_account (
    person_id  text NOT NULL,
    account_id text NOT NULL,
    relation   text NOT NULL,               -- direct | opportunity_role
    PRIMARY KEY (person_id, account_id, relation)
);
CREATE INDEX ON profile_person_account (account_id);

CREATE VIEW profile_event AS
SELECT m.person_id, e.source_key, e.event_type, e.activity_type_id, e.occurred_at,
       e.primary_value, e.url, e.attributes
FROM core_event e
JOIN identity_record_person m ON m.record_key = e.person_key;
