-- A vehicle gets its row (and key) just before its first sample goes in; a finalize that then
-- inserts nothing (every row a duplicate or skipped) leaves a row without samples, so the
-- queries below show only vehicles that have some.

-- name: ListVehicles :many
SELECT vehicle_id, record_count, first_timestamp::timestamptz AS first_timestamp, last_timestamp::timestamptz AS last_timestamp
FROM vehicles
WHERE record_count > 0
ORDER BY vehicle_id;

-- name: ListVehicleKeys :many
-- Every vehicle with samples, with its key: the list's vehicleIDs, and the map from the keys
-- that list and export queries return to ids. Count and span let a time range that holds a
-- vehicle's whole span (or none of it) be counted without reading its rollups.
SELECT vehicle_key, vehicle_id, record_count,
    first_timestamp::timestamptz AS first_timestamp, last_timestamp::timestamptz AS last_timestamp
FROM vehicles
WHERE record_count > 0
ORDER BY vehicle_id;

-- name: CountAllRecords :one
-- The sum of the per-vehicle figures: count without filters never scans samples.
SELECT COALESCE(sum(record_count), 0)::bigint AS count
FROM vehicles;

-- name: GetVehicle :one
SELECT vehicle_key, vehicle_id, record_count, first_timestamp::timestamptz AS first_timestamp, last_timestamp::timestamptz AS last_timestamp
FROM vehicles
WHERE vehicle_id = $1 AND record_count > 0;

-- name: EnsureVehicleKey :one
SELECT vehicle_key_for(@vehicle_id::text)::integer AS vehicle_key;
