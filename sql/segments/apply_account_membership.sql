-- One account audience at %(as_of)s, in one statement: who qualifies, the memberships of accounts
-- that no longer do closed, newcomers opened; current members stay as they are. Every
-- sub-statement sees the memberships as they were, so the count after is open_before - exited +
-- entered. Account audiences are batch only (a streaming pass never evaluates one).
WITH qualifying AS MATERIALIZED (
    SELECT q.account_id FROM ({members}) q
), exited AS (
    UPDATE audience_account_membership m
    SET exited_at = %(as_of)s
    WHERE m.segment_id = %(segment_id)s AND m.exited_at IS NULL
      AND NOT EXISTS (SELECT 1 FROM qualifying q WHERE q.account_id = m.account_id)
    RETURNING 1
), entered AS (
    INSERT INTO audience_account_membership (segment_id, account_id, entered_at)
    SELECT %(segment_id)s, q.account_id, %(as_of)s
    FROM qualifying q
    WHERE NOT EXISTS (SELECT 1 FROM audience_account_membership m
                      WHERE m.segment_id = %(segment_id)s AND m.account_id = q.account_id AND m.exited_at IS NULL)
    RETURNING 1
)
SELECT (SELECT count(*) FROM audience_account_membership WHERE segment_id = %(segment_id)s AND exited_at IS NULL),
       (SELECT count(*) FROM exited),
       (SELECT count(*) FROM entered)
