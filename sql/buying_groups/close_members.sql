-- Members who left the group, or whose role changed, exit at the evaluation time (counted per
-- solution interest).
WITH closed AS (
    UPDATE buying_group_member m
    SET exited_at = %(as_of)s
    WHERE m.exited_at IS NULL
      AND NOT EXISTS (SELECT 1 FROM bg_assignment s
                      WHERE s.group_id = m.group_id AND s.person_id = m.person_id AND s.role = m.role)
    RETURNING m.group_id
)
SELECT g.solution_interest, count(*) FROM closed c JOIN buying_group g USING (group_id) GROUP BY 1
