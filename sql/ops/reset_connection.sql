-- A connection kept for the next transaction is left as a new one would be: what DISCARD ALL
-- resets, less the prepared statements, which the client library tracks (DEALLOCATE behind its
-- back would leave it executing statements the server has forgotten).
CLOSE ALL;
RESET ALL;
UNLISTEN *;
SELECT pg_advisory_unlock_all();
DISCARD TEMP;
DISCARD SEQUENCES;
