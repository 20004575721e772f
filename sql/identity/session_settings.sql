-- Stitching runs short, selective statements: JIT compilation costs more than it saves here. A
-- full run aggregates and indexes millions of rows at once: in memory rather than spilled to disk
-- (the profiles' two largest sorts, about 300MB each at 1M persons, still spill: at 1GB they sort
-- in memory, and the statement measured no faster).
-- An incremental run touches few rows of large, cached tables: index probes beat full scans
-- (the default random_page_cost prices them for spinning disks).
SET LOCAL jit = off;
SET LOCAL work_mem = '256MB';
SET LOCAL maintenance_work_mem = '512MB';
SET LOCAL random_page_cost = 1.1;
