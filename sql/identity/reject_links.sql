-- Links the record rules refuse, with the rule as the reason. Role mailboxes are kept on their
-- record (accept_links) and noted here too: they never join two people.
INSERT INTO identity_rejected_link (record_key, namespace, value, reason, run_id)
SELECT record_key, namespace, value,
       coalesce(refused,
                CASE WHEN rank > %(max_per_record)s
                     THEN 'more than ' || %(max_per_record)s || ' identities on one record' END,
                CASE WHEN shared THEN 'shared role mailbox: kept on its record, never joins two people' END),
       %(run_id)s
FROM stitch_candidate
WHERE refused IS NOT NULL OR rank > %(max_per_record)s OR shared
