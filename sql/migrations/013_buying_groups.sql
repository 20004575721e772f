-- Buying groups: one per (account of a solution interest's account audience, solution interest),
-- formed from the people whose primary account it is, each holding one role of the interest's
-- template. Evaluated daily at the run's logical date (b2b_cdp.buying_groups).

CREATE TABLE buying_group (
    group_id          text        PRIMARY KEY,  -- <solution interest>/<account id>
    solution_interest text        NOT NULL,
    account_id        text        NOT NULL,
    template_id       text        NOT NULL,
    formed_at         timestamptz NOT NULL,     -- first evaluation that formed it
    dissolved_at      timestamptz,              -- the account left the audience (or the interest went)
    evaluated_at      timestamptz NOT NULL,     -- the latest evaluation: the scores below are as of it
    members           integer     NOT NULL DEFAULT 0,
    completeness      numeric(5, 2) NOT NULL DEFAULT 0,  -- 0-100
    complete          boolean     NOT NULL DEFAULT false,
    missing_roles     text[]      NOT NULL DEFAULT '{}', -- roles with fewer members than required
    engagement_points numeric     NOT NULL DEFAULT 0,
    engagement        numeric(5, 2) NOT NULL DEFAULT 0,  -- 0-100
    UNIQUE (solution_interest, account_id)
);

-- Membership with history: a member holds one open row (exited_at IS NULL) per group; a role change
-- closes the old row and opens a new one at the same evaluation time.
CREATE TABLE buying_group_member (
    group_id   text        NOT NULL REFERENCES buying_group (group_id),
    person_id  text        NOT NULL,
    role       text        NOT NULL,
    entered_at timestamptz NOT NULL,
    exited_at  timestamptz,
    PRIMARY KEY (group_id, person_id, role, entered_at)
);
CREATE UNIQUE INDEX buying_group_member_open ON buying_group_member (group_id, person_id)
    WHERE exited_at IS NULL;
CREATE INDEX ON buying_group_member (person_id) WHERE exited_at IS NULL;

-- The scores of every evaluation (the daily history of each group).
CREATE TABLE buying_group_score (
    group_id          text        NOT NULL REFERENCES buying_group (group_id),
    evaluated_at      timestamptz NOT NULL,
    members           integer     NOT NULL,
    completeness      numeric(5, 2) NOT NULL,
    complete          boolean     NOT NULL,
    missing_roles     text[]      NOT NULL,
    engagement_points numeric     NOT NULL,
    engagement        numeric(5, 2) NOT NULL,
    run_id            text        NOT NULL,
    PRIMARY KEY (group_id, evaluated_at)
);
