-- name: GetVehicleData :one
SELECT id, vehicle_id, "timestamp", speed, odometer, soc, elevation, shift_state
FROM vehicle_data
WHERE id = $1;

-- name: CreateVehicleData :one
-- ON CONFLICT DO NOTHING turns a duplicate into "no row" instead of an aborted transaction.
INSERT INTO vehicle_data (vehicle_id, "timestamp", speed, odometer, soc, elevation, shift_state)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (vehicle_id, "timestamp") DO NOTHING
RETURNING id, vehicle_id, "timestamp", speed, odometer, soc, elevation, shift_state;
