-- A kept connection is checked before reuse: the server may have closed it since.
SELECT 1
