-- Match rate of a sync: the share of the audience the destination holds once the run is done.
ALTER TABLE activation_sync_log ADD COLUMN match_rate numeric;
