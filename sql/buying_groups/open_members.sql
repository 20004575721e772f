-- New members (and new roles) enter at the evaluation time; current members are left as they are
-- (counted per solution interest).
WITH opened AS (
    INSERT INTO buying_group_member (group_id, person_id, role, entered_at)
    SELECT s.group_id, s.person_id, s.role, %(as_of)s
    FROM bg_assignment s
    WHERE NOT EXISTS (SELECT 1 FROM buying_group_member m
                      WHERE m.group_id = s.group_id AND m.person_id = s.person_id AND m.exited_at IS NULL)
    ON CONFLICT (group_id, person_id, role, entered_at) DO UPDATE SET exited_at = NULL
    RETURNING group_id
)
SELECT g.solution_interest, count(*) FROM opened o JOIN buying_group g USING (group_id) GROUP BY 1
