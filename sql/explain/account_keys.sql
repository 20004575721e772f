-- Every key an account is known by, with the source record behind it when there is one
-- (mdm:<id> is the MDM golden record; a key only people or deals point at has no record).
SELECT k.account_key, c.system, c.instance, c.name, c.is_deleted
FROM identity_account_key k
LEFT JOIN core_account c ON c.source_key = k.account_key
WHERE k.account_id = %(account_id)s
ORDER BY k.account_key LIKE 'mdm:%%' DESC, k.account_key
