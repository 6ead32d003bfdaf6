-- +goose Up
-- The bytes an upload's chunks hold, kept by the statement that stores a chunk (under the
-- upload's row lock), so that the quota on all unfinalized uploads sums one row per upload
-- instead of every chunk. That sum is read under a lock every chunk of every replica takes in
-- turn, so its cost caps the chunk rate of the whole service. EXPLAIN ANALYZE on PostgreSQL 15
-- (2 cores), 10,000 chunks of 1 KiB in 100 uploads:
--   sum(size) of upload_chunks, seq scan:         1429 pages, 4-6 ms, linear in the chunks
--   the same with an index on upload_chunks(size): index-only scan 2.1 ms just after a VACUUM,
--     11.9 ms (15,000 heap fetches) once half the chunks changed: chunks churn, so the
--     visibility map is rarely all-visible
--   sum(bytes) of uploads:                         2 pages, 0.1 ms; 0.5 ms with 17,000 dead
--     row versions and autovacuum off
-- A dropped upload (finalize, purge) takes its bytes with it: nothing to keep in step.
ALTER TABLE uploads ADD COLUMN bytes bigint NOT NULL DEFAULT 0 CHECK (bytes >= 0);

UPDATE uploads u
SET bytes = c.bytes
FROM (
    SELECT vehicle_id, file_name, sum(size) AS bytes
    FROM upload_chunks
    GROUP BY vehicle_id, file_name
) c
WHERE c.vehicle_id = u.vehicle_id AND c.file_name = u.file_name;

-- +goose Down
ALTER TABLE uploads DROP COLUMN bytes;
