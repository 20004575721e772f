CREATE TABLE ops_landing_check (               -- which landed batches the landing checkpoint has seen
    batch_id          text        PRIMARY KEY,
    loaded_at         timestamptz NOT NULL,    -- the landing it checked (a re-landed batch is checked again)
    rows_checked      integer     NOT NULL,
    rows_quarantined  integer     NOT NULL,
    checked_at        timestamptz NOT NULL DEFAULT clock_timestamp()
);
