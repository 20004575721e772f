-- Explaining only reads: the transaction refuses any write.
SET TRANSACTION READ ONLY
