-- Attribute updates of a Marketo run: planned when it starts (updated NULL), done when it ends.
UPDATE activation_sync_log
SET planned_update = coalesce(%(planned_update)s, planned_update), updated = %(updated)s
WHERE destination_id = %(destination_id)s AND audience_key = %(audience_key)s AND run_id = %(run_id)s
