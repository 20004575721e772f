-- Each account key's label from the account graph's components (write_account_labels fills it).
DROP TABLE IF EXISTS graph_label;
CREATE TEMP TABLE graph_label (node text NOT NULL, label text NOT NULL);
