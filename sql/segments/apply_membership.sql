-- One segment at %(as_of)s, in one statement: who qualifies (a streaming pass keeps only the people
-- it re-evaluates), the memberships of those who no longer do closed (a streaming pass closes only
-- among the people it re-evaluated), newcomers opened; current members stay as they are. Every sub-statement sees the memberships as they were, so the
-- count after is open_before - exited + entered.
WITH qualifying AS MATERIALIZED (
    SELECT q.person_id FROM ({members}) q {qualifying_scope}
), exited AS (
    UPDATE audience_membership m
    SET exited_at = %(as_of)s
    WHERE m.segment_id = %(segment_id)s AND m.exited_at IS NULL {exit_scope}
      AND NOT EXISTS (SELECT 1 FROM qualifying q WHERE q.person_id = m.person_id)
    RETURNING 1
), entered AS (
    INSERT INTO audience_membership (segment_id, person_id, entered_at)
    SELECT %(segment_id)s, q.person_id, %(as_of)s
    FROM qualifying q
    WHERE NOT EXISTS (SELECT 1 FROM audience_membership m
                      WHERE m.segment_id = %(segment_id)s AND m.person_id = q.person_id AND m.exited_at IS NULL)
    RETURNING 1
)
SELECT (SELECT count(*) FROM audience_membership WHERE segment_id = %(segment_id)s AND exited_at IS NULL),
       (SELECT count(*) FROM exited),
       (SELECT count(*) FROM entered)
