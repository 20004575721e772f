-- The settings a running server takes without a restart.
SELECT pg_reload_conf()
