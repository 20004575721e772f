-- Web (experience) events dropped as JSON-lines files: one row per event, keyed by what makes it
-- itself (ECID, time, URL), since events carry no id of their own.
CREATE TABLE raw_web_events (
    _batch_id     text        NOT NULL DEFAULT current_setting('cdp.batch_id'),
    _instance     text        NOT NULL DEFAULT current_setting('cdp.instance'),
    _extracted_at timestamptz NOT NULL DEFAULT current_setting('cdp.extracted_at')::timestamptz,
    _loaded_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    _parse_error  text,
    ecid          text,
    email         text,
    "timestamp"   text,
    url           text,
    _source_key   text GENERATED ALWAYS AS (
        md5(coalesce(ecid, '') || '|' || coalesce("timestamp", '') || '|' || coalesce(url, ''))
        || '@' || _instance || '.Web') STORED
);
CREATE INDEX raw_web_events__batch_id_idx ON raw_web_events USING brin (_batch_id);

-- Events keep the ECID and email they were seen with: identity stitching links them to people.
ALTER TABLE core_event ADD COLUMN ecid text, ADD COLUMN email text;
