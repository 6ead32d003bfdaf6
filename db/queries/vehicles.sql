-- name: ListVehicles :many
SELECT vehicle_id, record_count, first_timestamp, last_timestamp
FROM vehicles
ORDER BY vehicle_id;

-- name: ListVehicleIDs :many
SELECT vehicle_id
FROM vehicles
ORDER BY vehicle_id;

-- name: CountAllRecords :one
-- The sum of the per-vehicle figures: count without filters never scans vehicle_data.
SELECT COALESCE(sum(record_count), 0)::bigint AS count
FROM vehicles;

-- name: CountVehicleRecords :one
SELECT COALESCE((SELECT record_count FROM vehicles WHERE vehicle_id = $1), 0)::bigint AS count;

-- name: GetVehicle :one
SELECT vehicle_id, record_count, first_timestamp, last_timestamp
FROM vehicles
WHERE vehicle_id = $1;
