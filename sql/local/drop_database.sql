-- Drop a local stack's database even while its components still hold connections.
DROP DATABASE IF EXISTS {database} WITH (FORCE)
