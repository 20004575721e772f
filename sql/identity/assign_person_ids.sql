-- A person's id derives from its component's smallest record key, so it is the same on every run
-- while that record lives.
TRUNCATE identity_record_person;
INSERT INTO identity_record_person (record_key, person_id)
SELECT node, 'prs_' || substr(md5(label), 1, 20) FROM graph_label;
