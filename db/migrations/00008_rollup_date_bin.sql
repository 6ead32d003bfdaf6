-- +goose Up
-- +goose StatementBegin
-- Inserts merge into the rollups and the per-vehicle figures in one statement: one hash
-- aggregation of the new rows by minute, then their hours, then their vehicles. Rows are
-- upserted in key order, so concurrent inserts lock them in the same order.
--
-- Minutes and hours by date_bin from 2000-01-01 UTC instead of date_trunc(..., 'UTC'): the same
-- buckets (UTC minutes and hours are whole strides from that origin, before it too), but
-- plain arithmetic instead of a time zone conversion per row. Grouping one vehicle's 1,000,000
-- rows by minute, PostgreSQL 15: 420-440 ms with date_trunc, 210-215 ms with date_bin. The
-- other statements that compute buckets (updates, deletes) touch few rows and keep date_trunc.
CREATE OR REPLACE FUNCTION samples_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH m AS (
        SELECT vehicle_key, date_bin('1 minute', "timestamp", '2000-01-01 00:00:00+00') AS bucket, count(*)::integer AS n,
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
        SELECT vehicle_key, date_bin('1 hour', bucket, '2000-01-01 00:00:00+00') AS bucket, sum(n)::integer AS n, min(ts_min) AS ts_min, max(ts_max) AS ts_max,
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
-- +goose StatementBegin
-- 00006's insert trigger, with date_trunc.
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
