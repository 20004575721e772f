-- Web events -> core_event, with the ECID (and email when known) they were seen with. Until
-- identity links the ECID to a person, the event's person is the ECID itself.
INSERT INTO core_event AS c (source_key, instance, person_key, event_type, occurred_at, url, ecid, email,
                             attributes, extracted_at)
SELECT DISTINCT ON (r._source_key)
       r._source_key, r._instance, r.ecid || '@' || r._instance || '.ECID', 'Web Visit',
       (r."timestamp")::timestamptz, r.url, r.ecid, lower(btrim(r.email)), '{}'::jsonb, b.extracted_at
FROM raw_web_events r JOIN ops_ingest_batch b ON b.batch_id = r._batch_id
WHERE r._instance = %(instance)s AND r._batch_id = ANY (%(batch_ids)s) AND r.ecid IS NOT NULL
ORDER BY r._source_key, b.extracted_at DESC, b.loaded_at DESC, r._ctid DESC
ON CONFLICT (source_key) DO UPDATE
SET person_key = EXCLUDED.person_key, occurred_at = EXCLUDED.occurred_at, url = EXCLUDED.url,
    ecid = EXCLUDED.ecid, email = EXCLUDED.email, extracted_at = EXCLUDED.extracted_at
WHERE c.extracted_at <= EXCLUDED.extracted_at
