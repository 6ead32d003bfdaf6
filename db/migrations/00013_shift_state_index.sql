-- +goose Up
-- Pages ordered by shift_state. It has a handful of values (D, P, R, N and mostly NULL), so
-- ORDER BY shift_state, id sorted every matching row: at 10M rows page 1 of one vehicle took
-- 0.54-0.56 s and of every vehicle 1.1-1.2 s, page 1000 up to 3.8 s (stop 24's bench-list).
-- In this index a vehicle's rows are in that order, a time range is bounded by the ids of the
-- hours that cover it (key columns, so tested in the index, no heap visit) and filtered by the
-- included timestamp, and every vehicle's scans merge (see internal/records/sql.go). It costs
-- every ingest one more index entry per row (README, "Performance", has the figures).
-- Built in the migration's transaction: writes to samples wait for it (about 20 s at 10M rows),
-- reads do not.
CREATE INDEX samples_shift_state_idx ON samples (vehicle_key, shift_state, id) INCLUDE ("timestamp");

-- +goose Down
DROP INDEX samples_shift_state_idx;
