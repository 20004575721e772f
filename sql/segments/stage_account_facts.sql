-- One pass over the deals: per account (every account profile, and any account a person relates
-- to), one aggregate per opportunity condition of the pass's segments and account audiences
-- (columns o0, o1, ...: aggregates FILTER (WHERE ...), values bound). Accounts with no deal are
-- kept (a count of 0 may qualify).
CREATE TEMP TABLE segment_account_facts ON COMMIT DROP AS
SELECT pa.account_id, {columns}
FROM (SELECT account_id FROM profile_account UNION SELECT account_id FROM profile_person_account) pa
LEFT JOIN profile_opportunity o ON o.account_id = pa.account_id
GROUP BY pa.account_id
