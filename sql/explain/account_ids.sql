-- The accounts a reference names: an account id, an MDM id, any key the account is known by (a
-- source key, or a CRM id without its @org suffix), or a name (any case) the account, its records or
-- the MDM give it.
WITH wanted AS (SELECT btrim(%(reference)s) AS ref, lower(btrim(%(reference)s)) AS lower_ref)
SELECT a.account_id
FROM profile_account a, wanted
WHERE a.account_id = wanted.ref OR a.mdm_id = wanted.ref OR lower(btrim(a.name)) = wanted.lower_ref
UNION
SELECT k.account_id
FROM identity_account_key k, wanted
WHERE k.account_key IN (wanted.ref, 'mdm:' || wanted.ref) OR split_part(k.account_key, '@', 1) = wanted.ref
UNION
SELECT k.account_id
FROM core_account c
JOIN identity_account_key k ON k.account_key = c.source_key, wanted
WHERE lower(btrim(c.name)) = wanted.lower_ref
UNION
SELECT k.account_id
FROM core_account_xref x
JOIN identity_account_key k ON k.account_key = x.account_key, wanted
WHERE x.mdm_id = wanted.ref OR lower(btrim(x.name)) = wanted.lower_ref
ORDER BY 1
