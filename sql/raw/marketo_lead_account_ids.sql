-- The CRM account ids the instance's leads point at: the keys for querying companies and deals.
SELECT DISTINCT "sfdcAccountId"
FROM raw_marketo_leads
WHERE _instance = %(instance)s AND "sfdcAccountId" IS NOT NULL
