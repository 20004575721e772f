-- A full run judges every link afresh (ids stay stable: the record -> person map is kept).
TRUNCATE identity_link, identity_rejected_link;
