-- Groups whose account left the audience, or whose solution interest is no longer configured
-- (counted per solution interest).
WITH dissolved AS (
    UPDATE buying_group g
    SET dissolved_at = %(as_of)s, evaluated_at = %(as_of)s
    WHERE g.dissolved_at IS NULL
      AND NOT EXISTS (SELECT 1 FROM bg_account a WHERE a.group_id = g.group_id)
    RETURNING g.solution_interest
)
SELECT solution_interest, count(*) FROM dissolved GROUP BY 1
