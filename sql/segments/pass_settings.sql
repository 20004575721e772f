-- A pass groups, joins and anti-joins every person at once: with the default work_mem (4 MB) its
-- hash tables spill to disk in many batches. Local to the pass's transaction.
SET LOCAL work_mem = '256MB';
