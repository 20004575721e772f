-- The embedded warehouse's settings (embedded.py applies them one statement at a time: ALTER
-- SYSTEM runs outside a transaction). The pipeline rewrites large tables in bulk, a full stitching
-- run millions of links and profiles in one transaction; at PostgreSQL's defaults (128MB of
-- buffers, a checkpoint every 1GB of WAL) much of that time goes to WAL and checkpoints.
-- Nothing reads this server's WAL (no replica, no archive): at wal_level minimal, a table emptied
-- or created in the transaction that fills it is written and indexed without WAL.
ALTER SYSTEM SET wal_level = 'minimal';
ALTER SYSTEM SET max_wal_senders = 0;
-- Checkpoints by time, rarely by volume: bulk rewrites are not written out several times over.
ALTER SYSTEM SET max_wal_size = '8GB';
ALTER SYSTEM SET checkpoint_timeout = '30min';
-- Room for a full run's working set, still modest on a laptop.
ALTER SYSTEM SET shared_buffers = '1GB';
