-- Settings in the configuration files that the running server takes only when started again
-- (pg_file_settings reads the files afresh: no waiting for a reload to reach this session).
SELECT DISTINCT name FROM pg_file_settings WHERE error = 'setting could not be applied' ORDER BY name
