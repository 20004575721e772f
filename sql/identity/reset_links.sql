-- A full run judges every link afresh (ids stay stable: the record -> person map is kept). The
-- links are all written again: building their indexes once afterwards (create_link_indexes) costs
-- far less than maintaining them row by row.
TRUNCATE identity_link, identity_rejected_link;
DROP INDEX identity_link_record_key_idx;
DROP INDEX identity_link_value_namespace_idx;
