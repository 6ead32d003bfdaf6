-- name: UpsertUpload :one
-- Takes the upload's row lock before anything else, so a chunk waits while a finalize holds the
-- upload and chunks never change under it. Every chunk bumps updated_at for the purge.
INSERT INTO uploads AS u (vehicle_id, file_name, total_chunks)
VALUES (@vehicle_id, @file_name, @total_chunks)
ON CONFLICT (vehicle_id, file_name) DO UPDATE SET updated_at = now()
RETURNING u.total_chunks;

-- name: StoreUploadChunk :one
-- Stores a chunk (sending an index again replaces it, so clients can retry) and keeps the
-- upload's bytes: it adds the new chunk's size less the size of the chunk it replaces, and
-- returns the upload's bytes after that and what was added. It runs under the upload's row
-- lock (UpsertUpload), so nothing else changes this upload's chunks meanwhile; every part of
-- the statement sees one snapshot, so old is the chunk as it was before the replacement.
WITH old AS (
    SELECT o.size
    FROM upload_chunks o
    WHERE o.vehicle_id = @vehicle_id AND o.file_name = @file_name AND o.chunk_index = @chunk_index
), stored AS (
    INSERT INTO upload_chunks AS c (vehicle_id, file_name, chunk_index, data, size)
    VALUES (@vehicle_id, @file_name, @chunk_index, @data, octet_length(@data::bytea))
    ON CONFLICT (vehicle_id, file_name, chunk_index) DO UPDATE SET
        data        = EXCLUDED.data,
        size        = EXCLUDED.size,
        received_at = now()
    RETURNING c.size
), delta AS (
    SELECT (SELECT s.size FROM stored s) - coalesce((SELECT o.size FROM old o), 0) AS added
)
UPDATE uploads u
SET bytes = u.bytes + d.added
FROM delta d
WHERE u.vehicle_id = @vehicle_id AND u.file_name = @file_name
RETURNING u.bytes, d.added::bigint AS added;

-- name: CountUploadChunks :one
SELECT count(*)::integer AS received
FROM upload_chunks
WHERE vehicle_id = @vehicle_id AND file_name = @file_name;

-- name: LockUploadQuota :exec
-- The one lock behind the quota on all unfinalized uploads, held to the end of the transaction.
-- Every chunk that adds bytes takes it after storing itself and before reading
-- PendingUploadBytes, so such chunks commit one at a time across all replicas and each one
-- sees the bytes of all before it (READ COMMITTED: a statement sees what committed before it
-- began). The key is the first 8 bytes of sha256("vehicle-data: upload quota"), apart from
-- goose's migration lock.
SELECT pg_advisory_xact_lock(8846050723755880813);

-- name: PendingUploadBytes :one
-- Bytes held by all unfinalized uploads: one row per upload (see migration 00005).
SELECT coalesce(sum(bytes), 0)::bigint AS bytes
FROM uploads;

-- name: UploadStatus :many
-- One statement, so the upload and its chunk list come from one snapshot. An upload without
-- chunks yields one row with null chunk columns.
SELECT u.total_chunks, c.chunk_index, c.size
FROM uploads u
LEFT JOIN upload_chunks c ON c.vehicle_id = u.vehicle_id AND c.file_name = u.file_name
WHERE u.vehicle_id = @vehicle_id AND u.file_name = @file_name
ORDER BY c.chunk_index;

-- name: LockUploadForFinalize :one
-- NOWAIT: a second finalize (or a chunk being stored) fails at once instead of queueing.
SELECT total_chunks
FROM uploads
WHERE vehicle_id = @vehicle_id AND file_name = @file_name
FOR UPDATE NOWAIT;

-- name: ListUploadChunks :many
SELECT chunk_index, size
FROM upload_chunks
WHERE vehicle_id = @vehicle_id AND file_name = @file_name
ORDER BY chunk_index;

-- name: ReadUploadChunkPart :one
-- A part of a chunk (start is 1-based). The chunks are stored uncompressed (STORAGE EXTERNAL),
-- so substring fetches only the TOAST pieces it covers: a finalize holds one part in memory,
-- whatever the chunk size.
SELECT substring(data FROM @start::integer FOR @length::integer)::bytea AS part
FROM upload_chunks
WHERE vehicle_id = @vehicle_id AND file_name = @file_name AND chunk_index = @chunk_index;

-- name: DeleteUpload :execrows
DELETE FROM uploads
WHERE vehicle_id = @vehicle_id AND file_name = @file_name;

-- name: PurgeUploads :execrows
-- Uploads no chunk has touched for max_age; their chunks go by the cascade. The cutoff comes
-- from the database clock, the one that set updated_at, so the replicas' clocks don't matter.
-- SKIP LOCKED leaves alone an upload that a chunk or a finalize holds (it is not abandoned),
-- and keeps purges running on several replicas from queueing behind each other.
DELETE FROM uploads u
USING (
    SELECT o.vehicle_id, o.file_name
    FROM uploads o
    WHERE o.updated_at < now() - make_interval(secs => @max_age_seconds::double precision)
    FOR UPDATE SKIP LOCKED
) old
WHERE u.vehicle_id = old.vehicle_id AND u.file_name = old.file_name;

-- name: VacuumSamples :exec
-- After a big finalize: sets the new rows' hint bits and visibility map bits and refreshes
-- the planner's statistics at once, instead of leaving that to the first readers of the rows
-- (the dashboard's, right after an upload) and to autovacuum a minute later. SKIP_LOCKED: a
-- vacuum already running (autovacuum, another replica's) is enough.
VACUUM (ANALYZE, SKIP_LOCKED) samples, sample_five_minutes, sample_hours, sample_hour_states;
