-- Streaming passes look for events changed since the previous pass, Marketo activities included
-- (which carry no ECID): the index must cover every event, not only web visits.
DROP INDEX IF EXISTS core_event_changed_at_idx;
CREATE INDEX core_event_changed_at_all_idx ON core_event (changed_at);
