SELECT max(evaluated_at) FROM buying_group WHERE solution_interest = %(solution_interest)s
