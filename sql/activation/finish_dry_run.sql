-- A dry run ends having sent nothing: its sync log row carries the plan's counts only.
UPDATE activation_sync_log
SET added = 0, removed = 0, skipped = 0, api_calls = 0, finished_at = %(finished_at)s, dry_run = true,
    note = 'dry run: plan stored in activation_plan, nothing sent'
WHERE destination_id = %(destination_id)s AND audience_key = %(audience_key)s AND run_id = %(run_id)s
