SELECT cursor FROM ops_sync_cursor WHERE source_id = %(source_id)s AND stream = %(stream)s
