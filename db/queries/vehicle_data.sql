-- name: GetVehicleData :one
SELECT s.id, v.vehicle_id, s."timestamp", s.speed, s.odometer, s.soc, s.elevation, s.shift_state
FROM samples s
JOIN vehicles v ON v.vehicle_key = s.vehicle_key
WHERE s.id = @id;

-- name: CreateVehicleData :one
-- ON CONFLICT DO NOTHING turns a duplicate into "no row" instead of an aborted transaction.
INSERT INTO samples (vehicle_key, "timestamp", speed, odometer, soc, elevation, shift_state)
VALUES (vehicle_key_for(@vehicle_id::text), @timestamp, @speed, @odometer, @soc, @elevation, @shift_state)
ON CONFLICT (vehicle_key, "timestamp") DO NOTHING
RETURNING id, @vehicle_id::text AS vehicle_id, "timestamp", speed, odometer, soc, elevation, shift_state;

-- name: HasShiftStateIndex :one
-- The optional index of db/optional/shift_state_index.sql, usable (built and valid).
SELECT EXISTS (
    SELECT FROM pg_catalog.pg_index i
    WHERE i.indexrelid = to_regclass('samples_shift_state_idx') AND i.indisvalid
) AS present;
