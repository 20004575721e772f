-- An incremental stitching run updates the size of the persons it recomputed (update_persons) and
-- retires the ids no component kept (retire_persons). Room left on each page lets such an update
-- put the new row version beside the old one without a new index entry (the person id, the only
-- indexed column, never changes): one page written per person instead of three.
ALTER TABLE identity_person SET (fillfactor = 90);
