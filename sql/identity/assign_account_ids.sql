TRUNCATE identity_account_key;
INSERT INTO identity_account_key (account_key, account_id)
SELECT node, 'acc_' || substr(md5(label), 1, 20) FROM graph_label;
