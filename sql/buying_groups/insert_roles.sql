-- A template's roles for one solution interest, in priority order (the order the template lists them).
INSERT INTO bg_role (solution_interest, role, priority, weight, required_count, required_for_completeness)
SELECT %(solution_interest)s, r.role, r.priority, r.weight, r.required_count, r.required
FROM unnest(%(roles)s::text[], %(weights)s::integer[], %(required_counts)s::integer[], %(required)s::boolean[])
     WITH ORDINALITY AS r(role, weight, required_count, required, priority)
