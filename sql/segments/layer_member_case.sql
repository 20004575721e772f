CASE WHEN ({condition}) THEN {segment_id} END
