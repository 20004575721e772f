-- An incremental run joins a few thousand changed records to tables of millions of rows, all of
-- them cached. The planner's default prices a row read by a scan at a hundredth of a page read, so
-- it reads whole tables rather than probe their indexes a few thousand times; pricing each row
-- higher turns those joins into index probes (affected_persons: 1.9 s -> 0.7 s at 1M persons).
SET LOCAL cpu_tuple_cost = 0.05;
