SELECT max(started_at) FROM identity_run
