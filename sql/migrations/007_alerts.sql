CREATE TABLE ops_alert (
    alert      text        NOT NULL,           -- e.g. latency_window_missed
    subject    text        NOT NULL,           -- the DAG or source concerned
    details    jsonb       NOT NULL,
    raised_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
