-- The stitching transaction's view of the data, for a second connection that reads alongside it
-- (a full run computes the account graph there while this one judges and writes the person graph).
SELECT pg_export_snapshot()
