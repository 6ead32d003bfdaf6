-- +goose Up
-- The smallest and largest sample id of every minute and hour of a vehicle. A time range's ids
-- lie between the bounds of the hours that cover it, which turns "ordered by id among the rows
-- of a range" into an index range instead of a scan from the vehicle's newest id: at 10M rows,
-- page 1 of one vehicle's 20% range ordered by -speed (the rows without a speed come first, by
-- id) filtered out 121,315 index entries for 10 rows (23 ms).
ALTER TABLE sample_minutes ADD COLUMN id_min bigint, ADD COLUMN id_max bigint;
ALTER TABLE sample_hours ADD COLUMN id_min bigint, ADD COLUMN id_max bigint;

UPDATE sample_minutes m SET id_min = s.id_min, id_max = s.id_max
FROM (
    SELECT vehicle_key, date_trunc('minute', "timestamp", 'UTC') AS bucket, min(id) AS id_min, max(id) AS id_max
    FROM samples GROUP BY 1, 2
) s
WHERE m.vehicle_key = s.vehicle_key AND m.bucket = s.bucket;
UPDATE sample_hours h SET id_min = m.id_min, id_max = m.id_max
FROM (
    SELECT vehicle_key, date_trunc('hour', bucket, 'UTC') AS bucket, min(id_min) AS id_min, max(id_max) AS id_max
    FROM sample_minutes GROUP BY 1, 2
) m
WHERE h.vehicle_key = m.vehicle_key AND h.bucket = m.bucket;
ALTER TABLE sample_minutes ALTER COLUMN id_min SET NOT NULL, ALTER COLUMN id_max SET NOT NULL;
ALTER TABLE sample_hours ALTER COLUMN id_min SET NOT NULL, ALTER COLUMN id_max SET NOT NULL;
-- The updates left every row's old version behind (a minute row fills its page, so none was
-- updated in place): a plain vacuum keeps the doubled table and index, and the series, which
-- reads these rows, ran 30% slower on them at 10M samples. CLUSTER writes both anew, in key
-- order (it may run in the migration's transaction; VACUUM FULL may not).
CLUSTER sample_minutes USING sample_minutes_pkey;
CLUSTER sample_hours USING sample_hours_pkey;
ANALYZE sample_minutes;
ANALYZE sample_hours;

-- 00004's trigger functions, keeping the new columns too (the lines marked "ids").

-- +goose StatementBegin
-- The rollup rows of the minutes in samples_touched, recomputed from the samples (deletes and
-- updates: rare, operators only). Hours are recomputed from their minutes, vehicles from their
-- hours.
CREATE OR REPLACE FUNCTION samples_recompute() RETURNS void LANGUAGE plpgsql AS $$
BEGIN

    DELETE FROM sample_minutes m USING samples_touched t WHERE m.vehicle_key = t.vehicle_key AND m.bucket = t.bucket;
    INSERT INTO sample_minutes
    SELECT s.vehicle_key, t.bucket, count(*), min(s."timestamp"), max(s."timestamp"),
           count(s.speed), min(s.speed), max(s.speed), COALESCE(sum(s.speed), 0),
           min(s."timestamp") FILTER (WHERE s.speed IS NOT NULL), max(s."timestamp") FILTER (WHERE s.speed IS NOT NULL),
           min(s.odometer), max(s.odometer), sum(s.odometer), min(s.soc), max(s.soc), sum(s.soc),
           min(s.elevation), max(s.elevation), sum(s.elevation), min(s.id), max(s.id) -- ids
    FROM samples_touched t
    JOIN samples s ON s.vehicle_key = t.vehicle_key AND s."timestamp" >= t.bucket AND s."timestamp" < t.bucket + interval '1 minute'
    GROUP BY s.vehicle_key, t.bucket;

    DELETE FROM sample_hours h USING (SELECT DISTINCT vehicle_key, date_trunc('hour', bucket, 'UTC') AS bucket FROM samples_touched) t
    WHERE h.vehicle_key = t.vehicle_key AND h.bucket = t.bucket;
    INSERT INTO sample_hours
    SELECT m.vehicle_key, t.bucket, sum(m.n), min(m.ts_min), max(m.ts_max),
           sum(m.speed_n), min(m.speed_min), max(m.speed_max), sum(m.speed_sum), min(m.speed_first_ts), max(m.speed_last_ts),
           min(m.odometer_min), max(m.odometer_max), sum(m.odometer_sum), min(m.soc_min), max(m.soc_max), sum(m.soc_sum),
           min(m.elevation_min), max(m.elevation_max), sum(m.elevation_sum), min(m.id_min), max(m.id_max) -- ids
    FROM (SELECT DISTINCT vehicle_key, date_trunc('hour', bucket, 'UTC') AS bucket FROM samples_touched) t
    JOIN sample_minutes m ON m.vehicle_key = t.vehicle_key AND m.bucket >= t.bucket AND m.bucket < t.bucket + interval '1 hour'
    GROUP BY m.vehicle_key, t.bucket;

    UPDATE vehicles v SET
        record_count    = COALESCE(s.n, 0),
        first_timestamp = s.first_ts,
        last_timestamp  = s.last_ts
    FROM (SELECT DISTINCT vehicle_key FROM samples_touched) t
    LEFT JOIN LATERAL (
        SELECT sum(h.n) AS n, min(h.ts_min) AS first_ts, max(h.ts_max) AS last_ts
        FROM sample_hours h WHERE h.vehicle_key = t.vehicle_key
    ) s ON true
    WHERE v.vehicle_key = t.vehicle_key;
    -- A vehicle without samples is gone, as before.
    DELETE FROM vehicles v USING (SELECT DISTINCT vehicle_key FROM samples_touched) t
    WHERE v.vehicle_key = t.vehicle_key AND v.record_count = 0;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- Inserts merge into the rollups and the per-vehicle figures in one statement: one hash
-- aggregation of the new rows by minute, then their hours, then their vehicles. Rows are
-- upserted in key order, so concurrent inserts lock them in the same order.
CREATE OR REPLACE FUNCTION samples_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH m AS (
        SELECT vehicle_key, date_trunc('minute', "timestamp", 'UTC') AS bucket, count(*)::integer AS n,
               min("timestamp") AS ts_min, max("timestamp") AS ts_max,
               count(speed)::integer AS speed_n, min(speed) AS speed_min, max(speed) AS speed_max, COALESCE(sum(speed), 0) AS speed_sum,
               min("timestamp") FILTER (WHERE speed IS NOT NULL) AS speed_first_ts,
               max("timestamp") FILTER (WHERE speed IS NOT NULL) AS speed_last_ts,
               min(odometer) AS odometer_min, max(odometer) AS odometer_max, sum(odometer) AS odometer_sum,
               min(soc) AS soc_min, max(soc) AS soc_max, sum(soc) AS soc_sum,
               min(elevation) AS elevation_min, max(elevation) AS elevation_max, sum(elevation) AS elevation_sum,
               min(id) AS id_min, max(id) AS id_max -- ids
        FROM inserted
        GROUP BY 1, 2
    ), minutes AS (
        INSERT INTO sample_minutes AS t SELECT * FROM m ORDER BY vehicle_key, bucket
        ON CONFLICT (vehicle_key, bucket) DO UPDATE SET
            n = t.n + EXCLUDED.n, ts_min = LEAST(t.ts_min, EXCLUDED.ts_min), ts_max = GREATEST(t.ts_max, EXCLUDED.ts_max),
            speed_n = t.speed_n + EXCLUDED.speed_n, speed_min = LEAST(t.speed_min, EXCLUDED.speed_min),
            speed_max = GREATEST(t.speed_max, EXCLUDED.speed_max), speed_sum = t.speed_sum + EXCLUDED.speed_sum,
            speed_first_ts = LEAST(t.speed_first_ts, EXCLUDED.speed_first_ts), speed_last_ts = GREATEST(t.speed_last_ts, EXCLUDED.speed_last_ts),
            odometer_min = LEAST(t.odometer_min, EXCLUDED.odometer_min), odometer_max = GREATEST(t.odometer_max, EXCLUDED.odometer_max),
            odometer_sum = t.odometer_sum + EXCLUDED.odometer_sum,
            soc_min = LEAST(t.soc_min, EXCLUDED.soc_min), soc_max = GREATEST(t.soc_max, EXCLUDED.soc_max), soc_sum = t.soc_sum + EXCLUDED.soc_sum,
            elevation_min = LEAST(t.elevation_min, EXCLUDED.elevation_min), elevation_max = GREATEST(t.elevation_max, EXCLUDED.elevation_max),
            elevation_sum = t.elevation_sum + EXCLUDED.elevation_sum,
            id_min = LEAST(t.id_min, EXCLUDED.id_min), id_max = GREATEST(t.id_max, EXCLUDED.id_max) -- ids
    ), h AS (
        SELECT vehicle_key, date_trunc('hour', bucket, 'UTC') AS bucket, sum(n)::integer AS n, min(ts_min) AS ts_min, max(ts_max) AS ts_max,
               sum(speed_n)::integer AS speed_n, min(speed_min) AS speed_min, max(speed_max) AS speed_max, sum(speed_sum) AS speed_sum,
               min(speed_first_ts) AS speed_first_ts, max(speed_last_ts) AS speed_last_ts,
               min(odometer_min) AS odometer_min, max(odometer_max) AS odometer_max, sum(odometer_sum) AS odometer_sum,
               min(soc_min) AS soc_min, max(soc_max) AS soc_max, sum(soc_sum)::bigint AS soc_sum,
               min(elevation_min) AS elevation_min, max(elevation_max) AS elevation_max, sum(elevation_sum) AS elevation_sum,
               min(id_min) AS id_min, max(id_max) AS id_max -- ids
        FROM m
        GROUP BY 1, 2
    ), hours AS (
        INSERT INTO sample_hours AS t SELECT * FROM h ORDER BY vehicle_key, bucket
        ON CONFLICT (vehicle_key, bucket) DO UPDATE SET
            n = t.n + EXCLUDED.n, ts_min = LEAST(t.ts_min, EXCLUDED.ts_min), ts_max = GREATEST(t.ts_max, EXCLUDED.ts_max),
            speed_n = t.speed_n + EXCLUDED.speed_n, speed_min = LEAST(t.speed_min, EXCLUDED.speed_min),
            speed_max = GREATEST(t.speed_max, EXCLUDED.speed_max), speed_sum = t.speed_sum + EXCLUDED.speed_sum,
            speed_first_ts = LEAST(t.speed_first_ts, EXCLUDED.speed_first_ts), speed_last_ts = GREATEST(t.speed_last_ts, EXCLUDED.speed_last_ts),
            odometer_min = LEAST(t.odometer_min, EXCLUDED.odometer_min), odometer_max = GREATEST(t.odometer_max, EXCLUDED.odometer_max),
            odometer_sum = t.odometer_sum + EXCLUDED.odometer_sum,
            soc_min = LEAST(t.soc_min, EXCLUDED.soc_min), soc_max = GREATEST(t.soc_max, EXCLUDED.soc_max), soc_sum = t.soc_sum + EXCLUDED.soc_sum,
            elevation_min = LEAST(t.elevation_min, EXCLUDED.elevation_min), elevation_max = GREATEST(t.elevation_max, EXCLUDED.elevation_max),
            elevation_sum = t.elevation_sum + EXCLUDED.elevation_sum,
            id_min = LEAST(t.id_min, EXCLUDED.id_min), id_max = GREATEST(t.id_max, EXCLUDED.id_max) -- ids
    )
    UPDATE vehicles v SET
        record_count    = v.record_count + s.n,
        first_timestamp = LEAST(v.first_timestamp, s.ts_min),
        last_timestamp  = GREATEST(v.last_timestamp, s.ts_max)
    FROM (SELECT vehicle_key, sum(n) AS n, min(ts_min) AS ts_min, max(ts_max) AS ts_max FROM h GROUP BY vehicle_key) s
    WHERE v.vehicle_key = s.vehicle_key;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- 00004's functions again, then without the columns they do not know.

-- +goose StatementBegin
-- The rollup rows of the minutes in samples_touched, recomputed from the samples (deletes and
-- updates: rare, operators only). Hours are recomputed from their minutes, vehicles from their
-- hours.
CREATE OR REPLACE FUNCTION samples_recompute() RETURNS void LANGUAGE plpgsql AS $$
BEGIN

    DELETE FROM sample_minutes m USING samples_touched t WHERE m.vehicle_key = t.vehicle_key AND m.bucket = t.bucket;
    INSERT INTO sample_minutes
    SELECT s.vehicle_key, t.bucket, count(*), min(s."timestamp"), max(s."timestamp"),
           count(s.speed), min(s.speed), max(s.speed), COALESCE(sum(s.speed), 0),
           min(s."timestamp") FILTER (WHERE s.speed IS NOT NULL), max(s."timestamp") FILTER (WHERE s.speed IS NOT NULL),
           min(s.odometer), max(s.odometer), sum(s.odometer), min(s.soc), max(s.soc), sum(s.soc),
           min(s.elevation), max(s.elevation), sum(s.elevation)
    FROM samples_touched t
    JOIN samples s ON s.vehicle_key = t.vehicle_key AND s."timestamp" >= t.bucket AND s."timestamp" < t.bucket + interval '1 minute'
    GROUP BY s.vehicle_key, t.bucket;

    DELETE FROM sample_hours h USING (SELECT DISTINCT vehicle_key, date_trunc('hour', bucket, 'UTC') AS bucket FROM samples_touched) t
    WHERE h.vehicle_key = t.vehicle_key AND h.bucket = t.bucket;
    INSERT INTO sample_hours
    SELECT m.vehicle_key, t.bucket, sum(m.n), min(m.ts_min), max(m.ts_max),
           sum(m.speed_n), min(m.speed_min), max(m.speed_max), sum(m.speed_sum), min(m.speed_first_ts), max(m.speed_last_ts),
           min(m.odometer_min), max(m.odometer_max), sum(m.odometer_sum), min(m.soc_min), max(m.soc_max), sum(m.soc_sum),
           min(m.elevation_min), max(m.elevation_max), sum(m.elevation_sum)
    FROM (SELECT DISTINCT vehicle_key, date_trunc('hour', bucket, 'UTC') AS bucket FROM samples_touched) t
    JOIN sample_minutes m ON m.vehicle_key = t.vehicle_key AND m.bucket >= t.bucket AND m.bucket < t.bucket + interval '1 hour'
    GROUP BY m.vehicle_key, t.bucket;

    UPDATE vehicles v SET
        record_count    = COALESCE(s.n, 0),
        first_timestamp = s.first_ts,
        last_timestamp  = s.last_ts
    FROM (SELECT DISTINCT vehicle_key FROM samples_touched) t
    LEFT JOIN LATERAL (
        SELECT sum(h.n) AS n, min(h.ts_min) AS first_ts, max(h.ts_max) AS last_ts
        FROM sample_hours h WHERE h.vehicle_key = t.vehicle_key
    ) s ON true
    WHERE v.vehicle_key = t.vehicle_key;
    -- A vehicle without samples is gone, as before.
    DELETE FROM vehicles v USING (SELECT DISTINCT vehicle_key FROM samples_touched) t
    WHERE v.vehicle_key = t.vehicle_key AND v.record_count = 0;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- Inserts merge into the rollups and the per-vehicle figures in one statement: one hash
-- aggregation of the new rows by minute, then their hours, then their vehicles. Rows are
-- upserted in key order, so concurrent inserts lock them in the same order.
CREATE OR REPLACE FUNCTION samples_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH m AS (
        SELECT vehicle_key, date_trunc('minute', "timestamp", 'UTC') AS bucket, count(*)::integer AS n,
               min("timestamp") AS ts_min, max("timestamp") AS ts_max,
               count(speed)::integer AS speed_n, min(speed) AS speed_min, max(speed) AS speed_max, COALESCE(sum(speed), 0) AS speed_sum,
               min("timestamp") FILTER (WHERE speed IS NOT NULL) AS speed_first_ts,
               max("timestamp") FILTER (WHERE speed IS NOT NULL) AS speed_last_ts,
               min(odometer) AS odometer_min, max(odometer) AS odometer_max, sum(odometer) AS odometer_sum,
               min(soc) AS soc_min, max(soc) AS soc_max, sum(soc) AS soc_sum,
               min(elevation) AS elevation_min, max(elevation) AS elevation_max, sum(elevation) AS elevation_sum
        FROM inserted
        GROUP BY 1, 2
    ), minutes AS (
        INSERT INTO sample_minutes AS t SELECT * FROM m ORDER BY vehicle_key, bucket
        ON CONFLICT (vehicle_key, bucket) DO UPDATE SET
            n = t.n + EXCLUDED.n, ts_min = LEAST(t.ts_min, EXCLUDED.ts_min), ts_max = GREATEST(t.ts_max, EXCLUDED.ts_max),
            speed_n = t.speed_n + EXCLUDED.speed_n, speed_min = LEAST(t.speed_min, EXCLUDED.speed_min),
            speed_max = GREATEST(t.speed_max, EXCLUDED.speed_max), speed_sum = t.speed_sum + EXCLUDED.speed_sum,
            speed_first_ts = LEAST(t.speed_first_ts, EXCLUDED.speed_first_ts), speed_last_ts = GREATEST(t.speed_last_ts, EXCLUDED.speed_last_ts),
            odometer_min = LEAST(t.odometer_min, EXCLUDED.odometer_min), odometer_max = GREATEST(t.odometer_max, EXCLUDED.odometer_max),
            odometer_sum = t.odometer_sum + EXCLUDED.odometer_sum,
            soc_min = LEAST(t.soc_min, EXCLUDED.soc_min), soc_max = GREATEST(t.soc_max, EXCLUDED.soc_max), soc_sum = t.soc_sum + EXCLUDED.soc_sum,
            elevation_min = LEAST(t.elevation_min, EXCLUDED.elevation_min), elevation_max = GREATEST(t.elevation_max, EXCLUDED.elevation_max),
            elevation_sum = t.elevation_sum + EXCLUDED.elevation_sum
    ), h AS (
        SELECT vehicle_key, date_trunc('hour', bucket, 'UTC') AS bucket, sum(n)::integer AS n, min(ts_min) AS ts_min, max(ts_max) AS ts_max,
               sum(speed_n)::integer AS speed_n, min(speed_min) AS speed_min, max(speed_max) AS speed_max, sum(speed_sum) AS speed_sum,
               min(speed_first_ts) AS speed_first_ts, max(speed_last_ts) AS speed_last_ts,
               min(odometer_min) AS odometer_min, max(odometer_max) AS odometer_max, sum(odometer_sum) AS odometer_sum,
               min(soc_min) AS soc_min, max(soc_max) AS soc_max, sum(soc_sum)::bigint AS soc_sum,
               min(elevation_min) AS elevation_min, max(elevation_max) AS elevation_max, sum(elevation_sum) AS elevation_sum
        FROM m
        GROUP BY 1, 2
    ), hours AS (
        INSERT INTO sample_hours AS t SELECT * FROM h ORDER BY vehicle_key, bucket
        ON CONFLICT (vehicle_key, bucket) DO UPDATE SET
            n = t.n + EXCLUDED.n, ts_min = LEAST(t.ts_min, EXCLUDED.ts_min), ts_max = GREATEST(t.ts_max, EXCLUDED.ts_max),
            speed_n = t.speed_n + EXCLUDED.speed_n, speed_min = LEAST(t.speed_min, EXCLUDED.speed_min),
            speed_max = GREATEST(t.speed_max, EXCLUDED.speed_max), speed_sum = t.speed_sum + EXCLUDED.speed_sum,
            speed_first_ts = LEAST(t.speed_first_ts, EXCLUDED.speed_first_ts), speed_last_ts = GREATEST(t.speed_last_ts, EXCLUDED.speed_last_ts),
            odometer_min = LEAST(t.odometer_min, EXCLUDED.odometer_min), odometer_max = GREATEST(t.odometer_max, EXCLUDED.odometer_max),
            odometer_sum = t.odometer_sum + EXCLUDED.odometer_sum,
            soc_min = LEAST(t.soc_min, EXCLUDED.soc_min), soc_max = GREATEST(t.soc_max, EXCLUDED.soc_max), soc_sum = t.soc_sum + EXCLUDED.soc_sum,
            elevation_min = LEAST(t.elevation_min, EXCLUDED.elevation_min), elevation_max = GREATEST(t.elevation_max, EXCLUDED.elevation_max),
            elevation_sum = t.elevation_sum + EXCLUDED.elevation_sum
    )
    UPDATE vehicles v SET
        record_count    = v.record_count + s.n,
        first_timestamp = LEAST(v.first_timestamp, s.ts_min),
        last_timestamp  = GREATEST(v.last_timestamp, s.ts_max)
    FROM (SELECT vehicle_key, sum(n) AS n, min(ts_min) AS ts_min, max(ts_max) AS ts_max FROM h GROUP BY vehicle_key) s
    WHERE v.vehicle_key = s.vehicle_key;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

ALTER TABLE sample_minutes DROP COLUMN id_min, DROP COLUMN id_max;
ALTER TABLE sample_hours DROP COLUMN id_min, DROP COLUMN id_max;
