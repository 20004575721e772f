-- The first statement of a repeatable-read transaction: read exactly what the stitching
-- transaction that exported the snapshot reads.
SET TRANSACTION SNAPSHOT %(snapshot)s
