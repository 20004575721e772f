-- One pass over the person-account relations: per person, whether any of their accounts satisfies
-- each account condition of the pass's person segments (columns a0, a1, ...: bool_or(...), values
-- bound), reading the account (`a`) and its deal aggregates (`f`, when a condition needs them).
-- People with no account have no row (every condition false).
CREATE TEMP TABLE segment_person_account_facts ON COMMIT DROP AS
SELECT pa.person_id, {columns}
FROM profile_person_account pa
JOIN profile_account a ON a.account_id = pa.account_id
{account_facts}
GROUP BY pa.person_id
