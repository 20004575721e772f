-- The accounts of an account audience: an account audience segment's current members
-- (%(segment_id)s) or the accounts a solution interest's undissolved buying groups are in
-- (%(solution_interest)s); the other parameter is NULL. Buying-group columns are NULL for a segment.
WITH audience AS (
    SELECT m.account_id, NULL::boolean AS complete, NULL::numeric AS completeness
    FROM audience_account_membership m
    WHERE m.segment_id = %(segment_id)s AND m.exited_at IS NULL
    UNION ALL
    SELECT g.account_id, g.complete, g.completeness
    FROM buying_group g
    WHERE g.solution_interest = %(solution_interest)s AND g.dissolved_at IS NULL
)
SELECT au.account_id, a.mdm_id, a.name, a.website, au.complete, au.completeness,
       -- The organization URN known for the account (by id, MDM id or a source key), for LinkedIn.
       (SELECT o.organization_urn FROM activation_organization_urn o
        WHERE o.account_key = a.account_id OR o.account_key = a.mdm_id OR o.account_key = ANY (a.source_keys)
        ORDER BY o.account_key = a.account_id DESC, o.account_key = a.mdm_id DESC, o.account_key
        LIMIT 1) AS organization_urn
FROM audience au LEFT JOIN profile_account a ON a.account_id = au.account_id
ORDER BY au.account_id
