-- Person profiles of the rebuilt persons. Attributes: the first system in the source priority
-- that has a value, then the most recently updated record; consent is conservative (unsubscribed
-- anywhere means unsubscribed). Profiles over the guardrails are kept but excluded from segments.
INSERT INTO profile_person (person_id, email, first_name, last_name, title, company, unsubscribed,
                            created_at, updated_at, primary_account_id, source_keys, identity_map,
                            excluded_reason)
WITH records AS (
    SELECT m.person_id, p.*, ak.account_id,
           row_number() OVER (PARTITION BY m.person_id
                              ORDER BY array_position(%(source_priority)s::text[], p.system) NULLS LAST,
                                       p.updated_at DESC NULLS LAST, p.source_key) AS preference,
           -- The primary (direct) account: that of the most recently updated record having one.
           row_number() OVER (PARTITION BY m.person_id
                              ORDER BY ak.account_id IS NULL, p.updated_at DESC NULLS LAST,
                                       p.source_key) AS account_rank
    FROM stitch_person_records m
    JOIN core_person p ON p.source_key = m.record_key AND NOT p.is_deleted
    LEFT JOIN identity_account_key ak ON ak.account_key = p.account_key
), merged AS (       -- the attributes share one order: the input is sorted once, not per person
    SELECT person_id,
           (array_agg(lower(btrim(email)) ORDER BY preference) FILTER (WHERE nullif(btrim(email), '') IS NOT NULL))[1] AS email,
           (array_agg(first_name ORDER BY preference) FILTER (WHERE first_name IS NOT NULL))[1] AS first_name,
           (array_agg(last_name ORDER BY preference) FILTER (WHERE last_name IS NOT NULL))[1] AS last_name,
           (array_agg(title ORDER BY preference) FILTER (WHERE title IS NOT NULL))[1] AS title,
           (array_agg(company ORDER BY preference) FILTER (WHERE company IS NOT NULL))[1] AS company,
           bool_or(unsubscribed) AS unsubscribed,
           min(created_at) AS created_at, max(updated_at) AS updated_at,
           max(account_id) FILTER (WHERE account_rank = 1) AS primary_account_id,
           array_agg(source_key ORDER BY source_key) AS source_keys
    FROM records
    GROUP BY person_id
), held AS (          -- each identity once per person (two records may carry it), in one sort
    SELECT DISTINCT m.person_id, l.namespace, l.value
    FROM stitch_person_records m
    JOIN identity_link l ON l.record_key = m.record_key
), per_namespace AS (
    SELECT person_id, namespace, jsonb_agg(value ORDER BY value) AS ids, count(*) AS n
    FROM held
    GROUP BY person_id, namespace
), identity_map AS (
    SELECT person_id, jsonb_object_agg(namespace, ids) AS map, sum(n) AS identities
    FROM per_namespace GROUP BY person_id
), events AS (
    SELECT m.person_id, count(*) AS n
    FROM stitch_person_records m
    JOIN core_event e ON e.person_key = m.record_key
    GROUP BY m.person_id
)
SELECT g.person_id, g.email, g.first_name, g.last_name, g.title, g.company, g.unsubscribed,
       g.created_at, g.updated_at, g.primary_account_id, g.source_keys, coalesce(i.map, '{}'::jsonb),
       CASE WHEN i.identities > %(max_identities)s THEN 'more than ' || %(max_identities)s || ' identities'
            WHEN e.n > %(max_events)s THEN 'more than ' || %(max_events)s || ' events'
       END
FROM merged g
LEFT JOIN identity_map i USING (person_id)
LEFT JOIN events e USING (person_id)
