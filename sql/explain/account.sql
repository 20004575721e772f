-- An account's profile with its roll-ups.
SELECT account_id, name, mdm_id, website, industry, annual_revenue, employees, closed_won_amount,
       open_pipeline_amount, opportunity_count, last_close_date
FROM profile_account
WHERE account_id = %(account_id)s
