EXISTS (SELECT 1 FROM buying_group_member m JOIN buying_group g ON g.group_id = m.group_id
        WHERE m.person_id = p.person_id AND m.exited_at IS NULL AND g.dissolved_at IS NULL
          AND g.solution_interest = {solution_interest} AND {group_filter})
