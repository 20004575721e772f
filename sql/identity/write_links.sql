-- The graph's edges, judged in identity.py (CSV).
COPY identity_link (record_key, namespace, value, unique_scope, joins, seen_at) FROM STDIN WITH (FORMAT csv)
