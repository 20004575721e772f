-- A changed record's links are judged afresh.
DELETE FROM identity_link l USING stitch_changed c WHERE l.record_key = c.record_key;
DELETE FROM identity_rejected_link l USING stitch_changed c WHERE l.record_key = c.record_key;
