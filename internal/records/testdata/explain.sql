-- EXPLAIN (ANALYZE, BUFFERS) of every query the list endpoint issues, as internal/records
-- builds them (query.go: selectSQL, countSQL; gen/db: CountAllRecords, CountVehicleRecords,
-- ListVehicleIDs), with the bind parameters written in as literals of the same types.
-- Loads nothing. Run against a database migrated with db/migrations and filled with the
-- data set below (10 vehicles x 100,000 samples, one every ~5 s, overlapping in time):
--
--   DO $$ BEGIN FOR k IN 0..9 LOOP
--     INSERT INTO vehicle_data (vehicle_id, "timestamp", speed, odometer, soc, elevation, shift_state)
--     SELECT 'vehicle-' || lpad(k::text, 2, '0'),
--            timestamptz '2024-01-01 00:00:00+00' + make_interval(hours => k * 6)
--              + make_interval(secs => n * 5 + (random() * 0.999)),
--            CASE WHEN n % 50 = 0 THEN NULL ELSE round((random() * 120)::numeric, 1)::float8 END,
--            10000 + n * 0.05, (100 - (n / 1000) % 100)::smallint,
--            round((200 + 50 * sin(n / 500.0))::numeric, 2)::float8,
--            (ARRAY['P','D','R','N',NULL])[1 + n % 5]
--     FROM generate_series(0, 99999) AS n;
--   END LOOP; END $$;
--   VACUUM ANALYZE vehicle_data; VACUUM ANALYZE vehicles;
--
-- Then: psql "$DATABASE_URL" -f internal/records/testdata/explain.sql
-- Vehicle vehicle-03 spans 2024-01-01 18:00 to 2024-01-07 12:53; the data spans
-- 2024-01-01 00:00 to 2024-01-09 00:53. "One day" is 2024-01-04 (every vehicle reports).
-- A list request runs count, then the page (LIMIT page_size OFFSET (page-1)*page_size),
-- then the vehicle ids, in one REPEATABLE READ READ ONLY transaction.
\set ON_ERROR_STOP on
\pset pager off

-- ==== count and vehicleIDs without a time range: from the vehicles table ====
\echo '### count, no filter (CountAllRecords)'
EXPLAIN (ANALYZE, BUFFERS) SELECT COALESCE(sum(record_count), 0)::bigint AS count FROM vehicles;
\echo '### count, vehicle (CountVehicleRecords)'
EXPLAIN (ANALYZE, BUFFERS) SELECT COALESCE((SELECT record_count FROM vehicles WHERE vehicle_id = 'vehicle-03'), 0)::bigint AS count;
\echo '### vehicleIDs (ListVehicleIDs)'
EXPLAIN (ANALYZE, BUFFERS) SELECT vehicle_id FROM vehicles ORDER BY vehicle_id;

-- ==== count with a time range (countSQL): per-vehicle figures, scanning only the vehicles the range cuts ====
\echo '### count, one day'
EXPLAIN (ANALYZE, BUFFERS) SELECT COALESCE(sum(CASE WHEN v.first_timestamp >= '2024-01-04 00:00:00+00'::timestamptz AND v.last_timestamp <= '2024-01-04 23:59:59.999999+00'::timestamptz THEN v.record_count WHEN LEAST(v.last_timestamp, '2024-01-04 23:59:59.999999+00'::timestamptz) - GREATEST(v.first_timestamp, '2024-01-04 00:00:00+00'::timestamptz) > (v.last_timestamp - v.first_timestamp) / 2 THEN v.record_count - (SELECT count(*) FROM vehicle_data d WHERE d.vehicle_id = v.vehicle_id AND d."timestamp" < '2024-01-04 00:00:00+00'::timestamptz) - (SELECT count(*) FROM vehicle_data d WHERE d.vehicle_id = v.vehicle_id AND d."timestamp" > '2024-01-04 23:59:59.999999+00'::timestamptz) ELSE (SELECT count(*) FROM vehicle_data d WHERE d.vehicle_id = v.vehicle_id AND d."timestamp" >= '2024-01-04 00:00:00+00'::timestamptz AND d."timestamp" <= '2024-01-04 23:59:59.999999+00'::timestamptz) END), 0)::bigint FROM vehicles v WHERE v.last_timestamp >= '2024-01-04 00:00:00+00'::timestamptz AND v.first_timestamp <= '2024-01-04 23:59:59.999999+00'::timestamptz;
\echo '### count, vehicle + one day'
EXPLAIN (ANALYZE, BUFFERS) SELECT COALESCE(sum(CASE WHEN v.first_timestamp >= '2024-01-04 00:00:00+00'::timestamptz AND v.last_timestamp <= '2024-01-04 23:59:59.999999+00'::timestamptz THEN v.record_count WHEN LEAST(v.last_timestamp, '2024-01-04 23:59:59.999999+00'::timestamptz) - GREATEST(v.first_timestamp, '2024-01-04 00:00:00+00'::timestamptz) > (v.last_timestamp - v.first_timestamp) / 2 THEN v.record_count - (SELECT count(*) FROM vehicle_data d WHERE d.vehicle_id = v.vehicle_id AND d."timestamp" < '2024-01-04 00:00:00+00'::timestamptz) - (SELECT count(*) FROM vehicle_data d WHERE d.vehicle_id = v.vehicle_id AND d."timestamp" > '2024-01-04 23:59:59.999999+00'::timestamptz) ELSE (SELECT count(*) FROM vehicle_data d WHERE d.vehicle_id = v.vehicle_id AND d."timestamp" >= '2024-01-04 00:00:00+00'::timestamptz AND d."timestamp" <= '2024-01-04 23:59:59.999999+00'::timestamptz) END), 0)::bigint FROM vehicles v WHERE v.vehicle_id = 'vehicle-03' AND v.last_timestamp >= '2024-01-04 00:00:00+00'::timestamptz AND v.first_timestamp <= '2024-01-04 23:59:59.999999+00'::timestamptz;
\echo '### count, range covering everything'
EXPLAIN (ANALYZE, BUFFERS) SELECT COALESCE(sum(CASE WHEN v.first_timestamp >= '2024-01-01 00:00:00+00'::timestamptz AND v.last_timestamp <= '2024-01-10 00:00:00+00'::timestamptz THEN v.record_count WHEN LEAST(v.last_timestamp, '2024-01-10 00:00:00+00'::timestamptz) - GREATEST(v.first_timestamp, '2024-01-01 00:00:00+00'::timestamptz) > (v.last_timestamp - v.first_timestamp) / 2 THEN v.record_count - (SELECT count(*) FROM vehicle_data d WHERE d.vehicle_id = v.vehicle_id AND d."timestamp" < '2024-01-01 00:00:00+00'::timestamptz) - (SELECT count(*) FROM vehicle_data d WHERE d.vehicle_id = v.vehicle_id AND d."timestamp" > '2024-01-10 00:00:00+00'::timestamptz) ELSE (SELECT count(*) FROM vehicle_data d WHERE d.vehicle_id = v.vehicle_id AND d."timestamp" >= '2024-01-01 00:00:00+00'::timestamptz AND d."timestamp" <= '2024-01-10 00:00:00+00'::timestamptz) END), 0)::bigint FROM vehicles v WHERE v.last_timestamp >= '2024-01-01 00:00:00+00'::timestamptz AND v.first_timestamp <= '2024-01-10 00:00:00+00'::timestamptz;
\echo '### count, vehicle + range covering everything'
EXPLAIN (ANALYZE, BUFFERS) SELECT COALESCE(sum(CASE WHEN v.first_timestamp >= '2024-01-01 00:00:00+00'::timestamptz AND v.last_timestamp <= '2024-01-10 00:00:00+00'::timestamptz THEN v.record_count WHEN LEAST(v.last_timestamp, '2024-01-10 00:00:00+00'::timestamptz) - GREATEST(v.first_timestamp, '2024-01-01 00:00:00+00'::timestamptz) > (v.last_timestamp - v.first_timestamp) / 2 THEN v.record_count - (SELECT count(*) FROM vehicle_data d WHERE d.vehicle_id = v.vehicle_id AND d."timestamp" < '2024-01-01 00:00:00+00'::timestamptz) - (SELECT count(*) FROM vehicle_data d WHERE d.vehicle_id = v.vehicle_id AND d."timestamp" > '2024-01-10 00:00:00+00'::timestamptz) ELSE (SELECT count(*) FROM vehicle_data d WHERE d.vehicle_id = v.vehicle_id AND d."timestamp" >= '2024-01-01 00:00:00+00'::timestamptz AND d."timestamp" <= '2024-01-10 00:00:00+00'::timestamptz) END), 0)::bigint FROM vehicles v WHERE v.vehicle_id = 'vehicle-03' AND v.last_timestamp >= '2024-01-01 00:00:00+00'::timestamptz AND v.first_timestamp <= '2024-01-10 00:00:00+00'::timestamptz;
\echo '### count, from 2024-01-04 12:00 on (most vehicles cut past their middle: counts the rows outside)'
EXPLAIN (ANALYZE, BUFFERS) SELECT COALESCE(sum(CASE WHEN v.first_timestamp >= '2024-01-04 12:00:00+00'::timestamptz THEN v.record_count WHEN v.last_timestamp - GREATEST(v.first_timestamp, '2024-01-04 12:00:00+00'::timestamptz) > (v.last_timestamp - v.first_timestamp) / 2 THEN v.record_count - (SELECT count(*) FROM vehicle_data d WHERE d.vehicle_id = v.vehicle_id AND d."timestamp" < '2024-01-04 12:00:00+00'::timestamptz) ELSE (SELECT count(*) FROM vehicle_data d WHERE d.vehicle_id = v.vehicle_id AND d."timestamp" >= '2024-01-04 12:00:00+00'::timestamptz) END), 0)::bigint FROM vehicles v WHERE v.last_timestamp >= '2024-01-04 12:00:00+00'::timestamptz;

-- For comparison, the plain count the store used before (parallel index-only or seq scan):
\echo '### plain count, one day'
EXPLAIN (ANALYZE, BUFFERS) SELECT count(*) FROM vehicle_data WHERE "timestamp" >= '2024-01-04 00:00:00+00'::timestamptz AND "timestamp" <= '2024-01-04 23:59:59.999999+00'::timestamptz;
\echo '### plain count, range covering everything'
EXPLAIN (ANALYZE, BUFFERS) SELECT count(*) FROM vehicle_data WHERE "timestamp" >= '2024-01-01 00:00:00+00'::timestamptz AND "timestamp" <= '2024-01-10 00:00:00+00'::timestamptz;

-- ==== pages (selectSQL + LIMIT/OFFSET): page 1 and page 1000 of page_size 10 ====
\echo '### page 1, ordering=timestamp, no filter'
EXPLAIN (ANALYZE, BUFFERS) SELECT id, vehicle_id, "timestamp", speed, odometer, soc, elevation, shift_state FROM vehicle_data ORDER BY "timestamp", id LIMIT 10::bigint OFFSET 0::bigint;
\echo '### page 1000, ordering=timestamp, no filter'
EXPLAIN (ANALYZE, BUFFERS) SELECT id, vehicle_id, "timestamp", speed, odometer, soc, elevation, shift_state FROM vehicle_data ORDER BY "timestamp", id LIMIT 10::bigint OFFSET 9990::bigint;
\echo '### page 1, ordering=timestamp, vehicle'
EXPLAIN (ANALYZE, BUFFERS) SELECT id, vehicle_id, "timestamp", speed, odometer, soc, elevation, shift_state FROM vehicle_data WHERE vehicle_id = 'vehicle-03' ORDER BY "timestamp", id LIMIT 10::bigint OFFSET 0::bigint;
\echo '### page 1000, ordering=timestamp, vehicle'
EXPLAIN (ANALYZE, BUFFERS) SELECT id, vehicle_id, "timestamp", speed, odometer, soc, elevation, shift_state FROM vehicle_data WHERE vehicle_id = 'vehicle-03' ORDER BY "timestamp", id LIMIT 10::bigint OFFSET 9990::bigint;
\echo '### page 1, ordering=timestamp, one day'
EXPLAIN (ANALYZE, BUFFERS) SELECT id, vehicle_id, "timestamp", speed, odometer, soc, elevation, shift_state FROM vehicle_data WHERE "timestamp" >= '2024-01-04 00:00:00+00'::timestamptz AND "timestamp" <= '2024-01-04 23:59:59.999999+00'::timestamptz ORDER BY "timestamp", id LIMIT 10::bigint OFFSET 0::bigint;
\echo '### page 1000, ordering=timestamp, one day'
EXPLAIN (ANALYZE, BUFFERS) SELECT id, vehicle_id, "timestamp", speed, odometer, soc, elevation, shift_state FROM vehicle_data WHERE "timestamp" >= '2024-01-04 00:00:00+00'::timestamptz AND "timestamp" <= '2024-01-04 23:59:59.999999+00'::timestamptz ORDER BY "timestamp", id LIMIT 10::bigint OFFSET 9990::bigint;
\echo '### page 1, ordering=timestamp, vehicle + one day'
EXPLAIN (ANALYZE, BUFFERS) SELECT id, vehicle_id, "timestamp", speed, odometer, soc, elevation, shift_state FROM vehicle_data WHERE vehicle_id = 'vehicle-03' AND "timestamp" >= '2024-01-04 00:00:00+00'::timestamptz AND "timestamp" <= '2024-01-04 23:59:59.999999+00'::timestamptz ORDER BY "timestamp", id LIMIT 10::bigint OFFSET 0::bigint;
\echo '### page 1000, ordering=timestamp, vehicle + one day'
EXPLAIN (ANALYZE, BUFFERS) SELECT id, vehicle_id, "timestamp", speed, odometer, soc, elevation, shift_state FROM vehicle_data WHERE vehicle_id = 'vehicle-03' AND "timestamp" >= '2024-01-04 00:00:00+00'::timestamptz AND "timestamp" <= '2024-01-04 23:59:59.999999+00'::timestamptz ORDER BY "timestamp", id LIMIT 10::bigint OFFSET 9990::bigint;
\echo '### page 1, ordering=timestamp, range covering everything'
EXPLAIN (ANALYZE, BUFFERS) SELECT id, vehicle_id, "timestamp", speed, odometer, soc, elevation, shift_state FROM vehicle_data WHERE "timestamp" >= '2024-01-01 00:00:00+00'::timestamptz AND "timestamp" <= '2024-01-10 00:00:00+00'::timestamptz ORDER BY "timestamp", id LIMIT 10::bigint OFFSET 0::bigint;
\echo '### page 1000, ordering=timestamp, range covering everything'
EXPLAIN (ANALYZE, BUFFERS) SELECT id, vehicle_id, "timestamp", speed, odometer, soc, elevation, shift_state FROM vehicle_data WHERE "timestamp" >= '2024-01-01 00:00:00+00'::timestamptz AND "timestamp" <= '2024-01-10 00:00:00+00'::timestamptz ORDER BY "timestamp", id LIMIT 10::bigint OFFSET 9990::bigint;
\echo '### page 1, ordering=timestamp, vehicle + range covering everything'
EXPLAIN (ANALYZE, BUFFERS) SELECT id, vehicle_id, "timestamp", speed, odometer, soc, elevation, shift_state FROM vehicle_data WHERE vehicle_id = 'vehicle-03' AND "timestamp" >= '2024-01-01 00:00:00+00'::timestamptz AND "timestamp" <= '2024-01-10 00:00:00+00'::timestamptz ORDER BY "timestamp", id LIMIT 10::bigint OFFSET 0::bigint;
\echo '### page 1000, ordering=timestamp, vehicle + range covering everything'
EXPLAIN (ANALYZE, BUFFERS) SELECT id, vehicle_id, "timestamp", speed, odometer, soc, elevation, shift_state FROM vehicle_data WHERE vehicle_id = 'vehicle-03' AND "timestamp" >= '2024-01-01 00:00:00+00'::timestamptz AND "timestamp" <= '2024-01-10 00:00:00+00'::timestamptz ORDER BY "timestamp", id LIMIT 10::bigint OFFSET 9990::bigint;
\echo '### page 1, ordering=-timestamp, no filter'
EXPLAIN (ANALYZE, BUFFERS) SELECT id, vehicle_id, "timestamp", speed, odometer, soc, elevation, shift_state FROM vehicle_data ORDER BY "timestamp" DESC, id DESC LIMIT 10::bigint OFFSET 0::bigint;
\echo '### page 1000, ordering=-timestamp, no filter'
EXPLAIN (ANALYZE, BUFFERS) SELECT id, vehicle_id, "timestamp", speed, odometer, soc, elevation, shift_state FROM vehicle_data ORDER BY "timestamp" DESC, id DESC LIMIT 10::bigint OFFSET 9990::bigint;
\echo '### page 1, ordering=-timestamp, vehicle'
EXPLAIN (ANALYZE, BUFFERS) SELECT id, vehicle_id, "timestamp", speed, odometer, soc, elevation, shift_state FROM vehicle_data WHERE vehicle_id = 'vehicle-03' ORDER BY "timestamp" DESC, id DESC LIMIT 10::bigint OFFSET 0::bigint;
\echo '### page 1000, ordering=-timestamp, vehicle'
EXPLAIN (ANALYZE, BUFFERS) SELECT id, vehicle_id, "timestamp", speed, odometer, soc, elevation, shift_state FROM vehicle_data WHERE vehicle_id = 'vehicle-03' ORDER BY "timestamp" DESC, id DESC LIMIT 10::bigint OFFSET 9990::bigint;
\echo '### page 1, ordering=-timestamp, one day'
EXPLAIN (ANALYZE, BUFFERS) SELECT id, vehicle_id, "timestamp", speed, odometer, soc, elevation, shift_state FROM vehicle_data WHERE "timestamp" >= '2024-01-04 00:00:00+00'::timestamptz AND "timestamp" <= '2024-01-04 23:59:59.999999+00'::timestamptz ORDER BY "timestamp" DESC, id DESC LIMIT 10::bigint OFFSET 0::bigint;
\echo '### page 1000, ordering=-timestamp, one day'
EXPLAIN (ANALYZE, BUFFERS) SELECT id, vehicle_id, "timestamp", speed, odometer, soc, elevation, shift_state FROM vehicle_data WHERE "timestamp" >= '2024-01-04 00:00:00+00'::timestamptz AND "timestamp" <= '2024-01-04 23:59:59.999999+00'::timestamptz ORDER BY "timestamp" DESC, id DESC LIMIT 10::bigint OFFSET 9990::bigint;
\echo '### page 1, ordering=-timestamp, vehicle + one day'
EXPLAIN (ANALYZE, BUFFERS) SELECT id, vehicle_id, "timestamp", speed, odometer, soc, elevation, shift_state FROM vehicle_data WHERE vehicle_id = 'vehicle-03' AND "timestamp" >= '2024-01-04 00:00:00+00'::timestamptz AND "timestamp" <= '2024-01-04 23:59:59.999999+00'::timestamptz ORDER BY "timestamp" DESC, id DESC LIMIT 10::bigint OFFSET 0::bigint;
\echo '### page 1000, ordering=-timestamp, vehicle + one day'
EXPLAIN (ANALYZE, BUFFERS) SELECT id, vehicle_id, "timestamp", speed, odometer, soc, elevation, shift_state FROM vehicle_data WHERE vehicle_id = 'vehicle-03' AND "timestamp" >= '2024-01-04 00:00:00+00'::timestamptz AND "timestamp" <= '2024-01-04 23:59:59.999999+00'::timestamptz ORDER BY "timestamp" DESC, id DESC LIMIT 10::bigint OFFSET 9990::bigint;
\echo '### page 1, ordering=-timestamp, range covering everything'
EXPLAIN (ANALYZE, BUFFERS) SELECT id, vehicle_id, "timestamp", speed, odometer, soc, elevation, shift_state FROM vehicle_data WHERE "timestamp" >= '2024-01-01 00:00:00+00'::timestamptz AND "timestamp" <= '2024-01-10 00:00:00+00'::timestamptz ORDER BY "timestamp" DESC, id DESC LIMIT 10::bigint OFFSET 0::bigint;
\echo '### page 1000, ordering=-timestamp, range covering everything'
EXPLAIN (ANALYZE, BUFFERS) SELECT id, vehicle_id, "timestamp", speed, odometer, soc, elevation, shift_state FROM vehicle_data WHERE "timestamp" >= '2024-01-01 00:00:00+00'::timestamptz AND "timestamp" <= '2024-01-10 00:00:00+00'::timestamptz ORDER BY "timestamp" DESC, id DESC LIMIT 10::bigint OFFSET 9990::bigint;
\echo '### page 1, ordering=-timestamp, vehicle + range covering everything'
EXPLAIN (ANALYZE, BUFFERS) SELECT id, vehicle_id, "timestamp", speed, odometer, soc, elevation, shift_state FROM vehicle_data WHERE vehicle_id = 'vehicle-03' AND "timestamp" >= '2024-01-01 00:00:00+00'::timestamptz AND "timestamp" <= '2024-01-10 00:00:00+00'::timestamptz ORDER BY "timestamp" DESC, id DESC LIMIT 10::bigint OFFSET 0::bigint;
\echo '### page 1000, ordering=-timestamp, vehicle + range covering everything'
EXPLAIN (ANALYZE, BUFFERS) SELECT id, vehicle_id, "timestamp", speed, odometer, soc, elevation, shift_state FROM vehicle_data WHERE vehicle_id = 'vehicle-03' AND "timestamp" >= '2024-01-01 00:00:00+00'::timestamptz AND "timestamp" <= '2024-01-10 00:00:00+00'::timestamptz ORDER BY "timestamp" DESC, id DESC LIMIT 10::bigint OFFSET 9990::bigint;

-- ==== generic plans ====
-- pgx prepares every statement; after five runs PostgreSQL may switch to a generic plan,
-- which must stay as good. Forced here for the deepest page and the range counts.
SET plan_cache_mode = force_generic_plan;
PREPARE page_vehicle_range(text, timestamptz, timestamptz, bigint, bigint) AS
  SELECT id, vehicle_id, "timestamp", speed, odometer, soc, elevation, shift_state FROM vehicle_data WHERE vehicle_id = $1 AND "timestamp" >= $2 AND "timestamp" <= $3 ORDER BY "timestamp", id LIMIT $4 OFFSET $5;
PREPARE page_range(timestamptz, timestamptz, bigint, bigint) AS
  SELECT id, vehicle_id, "timestamp", speed, odometer, soc, elevation, shift_state FROM vehicle_data WHERE "timestamp" >= $1 AND "timestamp" <= $2 ORDER BY "timestamp", id LIMIT $3 OFFSET $4;
PREPARE count_range(timestamptz, timestamptz) AS
  SELECT COALESCE(sum(CASE WHEN v.first_timestamp >= $1 AND v.last_timestamp <= $2 THEN v.record_count WHEN LEAST(v.last_timestamp, $2) - GREATEST(v.first_timestamp, $1) > (v.last_timestamp - v.first_timestamp) / 2 THEN v.record_count - (SELECT count(*) FROM vehicle_data d WHERE d.vehicle_id = v.vehicle_id AND d."timestamp" < $1) - (SELECT count(*) FROM vehicle_data d WHERE d.vehicle_id = v.vehicle_id AND d."timestamp" > $2) ELSE (SELECT count(*) FROM vehicle_data d WHERE d.vehicle_id = v.vehicle_id AND d."timestamp" >= $1 AND d."timestamp" <= $2) END), 0)::bigint FROM vehicles v WHERE v.last_timestamp >= $1 AND v.first_timestamp <= $2;
\echo '### generic: page 1000, vehicle + range covering everything'
EXPLAIN (ANALYZE, BUFFERS) EXECUTE page_vehicle_range('vehicle-03', '2024-01-01 00:00:00+00', '2024-01-10 00:00:00+00', 10, 9990);
\echo '### generic: page 1000, one day'
EXPLAIN (ANALYZE, BUFFERS) EXECUTE page_range('2024-01-04 00:00:00+00', '2024-01-04 23:59:59.999999+00', 10, 9990);
\echo '### generic: count, one day'
EXPLAIN (ANALYZE, BUFFERS) EXECUTE count_range('2024-01-04 00:00:00+00', '2024-01-04 23:59:59.999999+00');
\echo '### generic: count, range covering everything'
EXPLAIN (ANALYZE, BUFFERS) EXECUTE count_range('2024-01-01 00:00:00+00', '2024-01-10 00:00:00+00');
DEALLOCATE ALL;
RESET plan_cache_mode;
