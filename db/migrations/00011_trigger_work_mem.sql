-- +goose Up
-- The insert trigger aggregates a whole statement's rows at once: a 1M-row finalize gives it
-- some 86,000 minutes to group (52 MB of hash table), then sorts them for the upserts. With the
-- server's default work_mem (4 MB, 8 MB of hash table) the grouping spilled in 21 batches (69 MB
-- written to temporary files and read back) and the sort went to disk too: 1.10 s of the
-- trigger's 2.57 s for the grouping, against 0.59 s in memory, 2.10 s in all (EXPLAIN ANALYZE
-- through auto_explain, 1M rows of `vehicle-data sample`). The setting holds for the function's
-- own statements only, and a finalize runs at most --max-finalizes (2) at a time, so the cost is
-- at most some 64 MB of sort and 128 MB of hash table (hash_mem_multiplier 2) per finalize;
-- larger statements still spill, in fewer batches. The statement's transition table itself is
-- kept under the session's work_mem, which this leaves alone. A later CREATE OR REPLACE of
-- the function must repeat the SET: replacing a function drops settings it does not name.
ALTER FUNCTION samples_after_insert() SET work_mem = '64MB';

-- +goose Down
ALTER FUNCTION samples_after_insert() RESET work_mem;
