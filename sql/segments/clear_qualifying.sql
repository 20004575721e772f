-- Before each layer: the previous layer's rows are gone (its memberships are applied).
TRUNCATE segment_qualifying
