SELECT started_at, rules_hash FROM identity_run ORDER BY started_at DESC LIMIT 1
