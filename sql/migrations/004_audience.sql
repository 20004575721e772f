-- Segment membership with history: a member has one open row (exited_at IS NULL) while inside.

CREATE TABLE audience_membership (
    segment_id text        NOT NULL,
    person_id  text        NOT NULL,
    entered_at timestamptz NOT NULL,
    exited_at  timestamptz,
    PRIMARY KEY (segment_id, person_id, entered_at)
);
CREATE UNIQUE INDEX audience_membership_open ON audience_membership (segment_id, person_id)
    WHERE exited_at IS NULL;

CREATE TABLE audience_evaluation (
    segment_id      text        NOT NULL,
    evaluated_at    timestamptz NOT NULL,   -- the DAG run's logical date
    mode            text        NOT NULL,
    definition_hash text        NOT NULL,
    members         integer     NOT NULL,
    entered         integer     NOT NULL,
    exited          integer     NOT NULL,
    run_id          text        NOT NULL,
    PRIMARY KEY (segment_id, evaluated_at)
);
