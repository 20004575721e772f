-- One pass over the deals: per account any person relates to, one aggregate per opportunity
-- condition of the pass's segments (columns o0, o1, ...: aggregates FILTER (WHERE ...), values bound).
-- Accounts with no deal are kept (a count of 0 may qualify).
CREATE TEMP TABLE segment_account_facts ON COMMIT DROP AS
SELECT pa.account_id, {columns}
FROM (SELECT DISTINCT account_id FROM profile_person_account) pa
LEFT JOIN profile_opportunity o ON o.account_id = pa.account_id
GROUP BY pa.account_id
