-- The buying-group checkpoint's facts, after formation: one row per rule, with how many break it and
-- one example. The roles of each solution interest's template come as arrays; bg_account holds each
-- interest's account audience, staged again for the check.
WITH roles AS (
    SELECT * FROM unnest(%(interests)s::text[], %(roles)s::text[], %(required_counts)s::integer[],
                         %(required)s::boolean[]) AS r(solution_interest, role, required_count, required)
), live AS (
    SELECT * FROM buying_group WHERE dissolved_at IS NULL AND solution_interest = ANY(%(interests)s::text[])
), open_members AS (
    SELECT m.* FROM buying_group_member m JOIN live g USING (group_id) WHERE m.exited_at IS NULL
), assigned AS (
    SELECT group_id, role, count(*) AS n FROM open_members GROUP BY group_id, role
), expected AS (
    SELECT g.group_id, g.complete,
           coalesce(bool_and(coalesce(n.n, 0) >= r.required_count) FILTER (WHERE r.required), false) AS complete_expected
    FROM live g
    JOIN roles r USING (solution_interest)
    LEFT JOIN assigned n ON n.group_id = g.group_id AND n.role = r.role
    GROUP BY g.group_id, g.complete
)
SELECT 'completeness and engagement within 0..100' AS rule, count(*) AS violations, min(group_id) AS example
FROM live WHERE completeness NOT BETWEEN 0 AND 100 OR engagement NOT BETWEEN 0 AND 100
UNION ALL
SELECT 'each member holds one role of the template per group', count(*), min(member)
FROM (SELECT m.group_id || ' ' || m.person_id AS member
      FROM open_members m JOIN live g USING (group_id)
      LEFT JOIN roles r ON r.solution_interest = g.solution_interest AND r.role = m.role
      GROUP BY m.group_id, m.person_id
      HAVING count(*) > 1 OR bool_or(r.role IS NULL)) doubled
UNION ALL
SELECT 'complete exactly when every required role has its required count', count(*), min(group_id)
FROM expected WHERE complete <> complete_expected
UNION ALL
SELECT 'a group''s member count is its open members', count(*), min(g.group_id)
FROM live g WHERE g.members <> (SELECT count(*) FROM open_members m WHERE m.group_id = g.group_id)
UNION ALL
SELECT 'every live group''s account is in its solution interest''s account audience', count(*), min(g.group_id)
FROM live g
WHERE NOT EXISTS (SELECT 1 FROM bg_account a WHERE a.solution_interest = g.solution_interest
                                               AND a.account_id = g.account_id)
UNION ALL
SELECT 'every account of an account audience has a live group', count(*), min(a.group_id)
FROM bg_account a WHERE NOT EXISTS (SELECT 1 FROM live g WHERE g.group_id = a.group_id)
