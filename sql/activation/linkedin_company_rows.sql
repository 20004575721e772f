-- The companies of a solution interest's account audience as LinkedIn matches them: name, website
-- and the organization URN when one is known for the account (by id, MDM id or a source key).
SELECT g.account_id, a.name, a.website,
       (SELECT o.organization_urn FROM activation_organization_urn o
        WHERE o.account_key = a.account_id OR o.account_key = a.mdm_id OR o.account_key = ANY (a.source_keys)
        ORDER BY o.account_key = a.account_id DESC, o.account_key = a.mdm_id DESC, o.account_key
        LIMIT 1) AS organization_urn
FROM buying_group g LEFT JOIN profile_account a ON a.account_id = g.account_id
WHERE g.solution_interest = %(solution_interest)s AND g.dissolved_at IS NULL
ORDER BY g.account_id
