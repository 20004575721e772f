-- A person's profile and the history of its id (either may be missing: the profile of a person with
-- no live record, or an id given before the id register existed).
SELECT want.person_id, pp.email, pp.first_name, pp.last_name, pp.title, pp.company, pp.unsubscribed,
       pp.created_at, pp.updated_at, pp.primary_account_id, pp.excluded_reason,
       pp.person_id IS NOT NULL AS has_profile,
       ip.created_at AS id_created_at, ip.created_run AS id_created_run,
       ip.retired_at, ip.retired_reason
FROM (SELECT %(person_id)s::text AS person_id) want
LEFT JOIN profile_person pp ON pp.person_id = want.person_id
LEFT JOIN identity_person ip ON ip.person_id = want.person_id
