-- The scores of every staged group at the evaluation time, kept in buying_group_score (one row per group and
-- evaluation) and on the group itself.
--   completeness: the mean, over the template's roles required for completeness, of
--                 min(members in the role / the role's required count, 1), as a percentage;
--   missing_roles: every role of the template with fewer members than its required count;
--   engagement:   each member's activities of the 30 days before the evaluation, each activity
--                 type counted at most 20 times per member per UTC day, times the type's
--                 weight, times the member's role weight / 100; the group's points p score
--                 100 * sqrt(min(p, full) / full).
WITH assigned AS (
    SELECT m.group_id, m.role, count(*) AS n
    FROM buying_group_member m JOIN bg_account a ON a.group_id = m.group_id
    WHERE m.exited_at IS NULL
    GROUP BY m.group_id, m.role
), roles AS (
    SELECT a.group_id, r.role, r.priority, r.required_count, r.required_for_completeness,
           coalesce(s.n, 0) AS assigned
    FROM bg_account a
    JOIN bg_role r ON r.solution_interest = a.solution_interest
    LEFT JOIN assigned s ON s.group_id = a.group_id AND s.role = r.role
), completeness AS (
    SELECT group_id,
           sum(assigned)::integer AS members,
           round(100 * avg(least(assigned::numeric / required_count, 1))
                       FILTER (WHERE required_for_completeness), 2) AS completeness,
           coalesce(bool_and(assigned >= required_count) FILTER (WHERE required_for_completeness),
                    false) AS complete,
           coalesce(array_agg(role ORDER BY priority) FILTER (WHERE assigned < required_count),
                    '{}') AS missing_roles
    FROM roles
    GROUP BY group_id
), daily AS (
    SELECT m.group_id, m.role, e.event_type, least(count(*), %(daily_cap)s::integer) AS n
    FROM buying_group_member m
    JOIN bg_account a ON a.group_id = m.group_id
    JOIN profile_event e ON e.person_id = m.person_id
    WHERE m.exited_at IS NULL
      AND e.occurred_at > %(as_of)s - make_interval(days => %(window_days)s::integer)
      AND e.occurred_at <= %(as_of)s
    GROUP BY m.group_id, m.person_id, m.role, e.event_type, (e.occurred_at AT TIME ZONE 'UTC')::date
), points AS (
    SELECT d.group_id,
           sum(d.n * coalesce(w.weight, %(default_weight)s::numeric) * r.weight / 100) AS points
    FROM daily d
    JOIN bg_account a ON a.group_id = d.group_id
    JOIN bg_role r ON r.solution_interest = a.solution_interest AND r.role = d.role
    LEFT JOIN unnest(%(event_types)s::text[], %(event_weights)s::numeric[]) AS w(event_type, weight)
           ON w.event_type = d.event_type
    GROUP BY d.group_id
), scored AS (
    SELECT c.*, coalesce(p.points, 0) AS engagement_points,
           round(100 * sqrt(least(coalesce(p.points, 0) / %(full_score_points)s::numeric, 1)), 2) AS engagement
    FROM completeness c
    LEFT JOIN points p USING (group_id)
), history AS (
    INSERT INTO buying_group_score (group_id, evaluated_at, members, completeness, complete, missing_roles,
                                    engagement_points, engagement, run_id)
    SELECT group_id, %(as_of)s, members, completeness, complete, missing_roles, engagement_points,
           engagement, %(run_id)s
    FROM scored
    ON CONFLICT (group_id, evaluated_at) DO UPDATE
    SET members = EXCLUDED.members, completeness = EXCLUDED.completeness, complete = EXCLUDED.complete,
        missing_roles = EXCLUDED.missing_roles, engagement_points = EXCLUDED.engagement_points,
        engagement = EXCLUDED.engagement, run_id = EXCLUDED.run_id
)
UPDATE buying_group g
SET members = s.members, completeness = s.completeness, complete = s.complete,
    missing_roles = s.missing_roles, engagement_points = s.engagement_points,
    engagement = s.engagement, evaluated_at = %(as_of)s
FROM scored s
WHERE g.group_id = s.group_id
RETURNING g.solution_interest, g.members, g.complete
