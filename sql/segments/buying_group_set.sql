p.person_id IN (SELECT m.person_id FROM buying_group_member m JOIN buying_group g ON g.group_id = m.group_id
                WHERE m.exited_at IS NULL AND g.dissolved_at IS NULL
                  AND g.solution_interest = {solution_interest} AND {group_filter})
