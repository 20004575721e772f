-- Each account key and its component's smallest key, from identity.py (CSV).
COPY graph_label (node, label) FROM STDIN WITH (FORMAT csv)
