-- One segment at %(as_of)s, in one statement: who qualifies (a streaming pass keeps only the people
-- it re-evaluates), the memberships of those who no longer do closed (a streaming pass closes only
-- among the people it re-evaluated), newcomers opened; current members stay as they are. Every
-- sub-statement sees the memberships as they were, so the count after is open_before - exited +
-- entered. {membership} and {member} are audience_membership / person_id for person segments,
-- audience_account_membership / account_id for account audiences.
WITH qualifying AS MATERIALIZED (
    SELECT q.{member} FROM ({members}) q {qualifying_scope}
), exited AS (
    UPDATE {membership} m
    SET exited_at = %(as_of)s
    WHERE m.segment_id = %(segment_id)s AND m.exited_at IS NULL {exit_scope}
      AND NOT EXISTS (SELECT 1 FROM qualifying q WHERE q.{member} = m.{member})
    RETURNING 1
), entered AS (
    INSERT INTO {membership} (segment_id, {member}, entered_at)
    SELECT %(segment_id)s, q.{member}, %(as_of)s
    FROM qualifying q
    WHERE NOT EXISTS (SELECT 1 FROM {membership} m
                      WHERE m.segment_id = %(segment_id)s AND m.{member} = q.{member} AND m.exited_at IS NULL)
    RETURNING 1
)
SELECT (SELECT count(*) FROM {membership} WHERE segment_id = %(segment_id)s AND exited_at IS NULL),
       (SELECT count(*) FROM exited),
       (SELECT count(*) FROM entered)
