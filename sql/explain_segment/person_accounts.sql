-- The accounts a person condition on accounts looks at: every account of the person.
(SELECT DISTINCT account_id FROM profile_person_account WHERE person_id = %(person_id)s)
