-- The layer's rows, and the memberships as the previous layers left them, counted: applying them
-- then plans hash joins for millions of rows and index probes for a few (statistics of a table
-- changed in this transaction are stale until analysed).
ANALYZE segment_qualifying;
ANALYZE audience_membership;
