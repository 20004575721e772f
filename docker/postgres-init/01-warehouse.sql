-- Run once by the postgres image on an empty data volume (docker-entrypoint-initdb.d), after the
-- Airflow metadata database (POSTGRES_DB=airflow) exists: the warehouse is a second database in the
-- same server, owned by its own role. Local development only: the password is not a secret.
CREATE ROLE cdp WITH LOGIN PASSWORD 'cdp';
CREATE DATABASE cdp OWNER cdp;
