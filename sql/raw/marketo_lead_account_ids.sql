-- The CRM account ids the instance's leads point at: the keys for querying companies and deals.
SELECT DISTINCT _record->>'sfdcAccountId'
FROM raw_marketo_leads
WHERE _instance = %(instance)s AND _record->>'sfdcAccountId' IS NOT NULL
