-- An account's id derives from its component's smallest key, so it is the same on every run while
-- that key lives. The keys whose account changed send their persons' profiles to be rebuilt.
CREATE TEMP TABLE stitch_account_before ON COMMIT DROP AS SELECT * FROM identity_account_key;
TRUNCATE identity_account_key;
INSERT INTO identity_account_key (account_key, account_id)
SELECT node, 'acc_' || substr(md5(label), 1, 20) FROM graph_label;
CREATE TEMP TABLE stitch_account_changed ON COMMIT DROP AS
SELECT coalesce(n.account_key, o.account_key) AS account_key
FROM identity_account_key n
FULL JOIN stitch_account_before o USING (account_key)
WHERE n.account_id IS DISTINCT FROM o.account_id;
