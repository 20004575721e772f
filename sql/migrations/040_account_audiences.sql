-- Account audiences (segments with `audience: account`): their members are accounts, with the same
-- history as person segments (one open row, exited_at IS NULL, while inside).
CREATE TABLE audience_account_membership (
    segment_id text        NOT NULL,
    account_id text        NOT NULL,
    entered_at timestamptz NOT NULL,
    exited_at  timestamptz,
    PRIMARY KEY (segment_id, account_id, entered_at)
);
CREATE UNIQUE INDEX audience_account_membership_open ON audience_account_membership (segment_id, account_id)
    WHERE exited_at IS NULL;

-- Which kind of members an evaluation counted: person or account.
ALTER TABLE audience_evaluation ADD COLUMN audience text NOT NULL DEFAULT 'person';
