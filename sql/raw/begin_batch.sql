-- The batch's identity for the rows about to be written: the raw tables' defaults read these
-- transaction-local settings, so COPY carries only the source's own columns.
SELECT set_config('cdp.batch_id', %(batch_id)s, true),
       set_config('cdp.instance', %(instance)s, true)
