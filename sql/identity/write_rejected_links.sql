-- Links the record rules refuse, with the rule as the reason (CSV). Role mailboxes are kept on
-- their record (write_links, joins false) and noted here too: they never join two people.
COPY identity_rejected_link (record_key, namespace, value, reason, run_id) FROM STDIN WITH (FORMAT csv)
