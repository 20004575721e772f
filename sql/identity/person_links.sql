-- The identities each live person record carries: its normalised email, and the CRM record it is
-- (a contact) or is synced with (a Marketo lead's sfdcContactId). Records sharing one are one person.
TRUNCATE identity_link;
INSERT INTO identity_link (record_key, namespace, value)
SELECT source_key, 'email', lower(btrim(email))
FROM core_person
WHERE NOT is_deleted AND nullif(btrim(email), '') IS NOT NULL
UNION
SELECT source_key, 'crm', crm_key
FROM core_person
WHERE NOT is_deleted AND crm_key IS NOT NULL;
