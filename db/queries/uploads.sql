-- name: UpsertUpload :one
-- Takes the upload's row lock before anything else, so a chunk waits while a finalize holds the
-- upload and chunks never change under it. Every chunk bumps updated_at for the purge.
INSERT INTO uploads AS u (vehicle_id, file_name, total_chunks)
VALUES (@vehicle_id, @file_name, @total_chunks)
ON CONFLICT (vehicle_id, file_name) DO UPDATE SET updated_at = now()
RETURNING u.total_chunks;

-- name: UpsertUploadChunk :exec
-- Sending an index again replaces it, so clients can retry.
INSERT INTO upload_chunks AS c (vehicle_id, file_name, chunk_index, data, size)
VALUES (@vehicle_id, @file_name, @chunk_index, @data, octet_length(@data::bytea))
ON CONFLICT (vehicle_id, file_name, chunk_index) DO UPDATE SET
    data        = EXCLUDED.data,
    size        = EXCLUDED.size,
    received_at = now();

-- name: CountUploadChunks :one
SELECT count(*)::integer AS received
FROM upload_chunks
WHERE vehicle_id = @vehicle_id AND file_name = @file_name;

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
