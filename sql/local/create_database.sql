-- A database for a local Airflow stack (its metadata, or a throw-away warehouse). Run in autocommit:
-- PostgreSQL creates databases outside transactions.
CREATE DATABASE {database}
