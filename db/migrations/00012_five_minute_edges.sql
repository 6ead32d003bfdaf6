-- +goose Up
-- The five-minute rollup keeps its rows' edge values, as the hour rollup does (00009), and the
-- minute rollup is gone.
--
-- Series of 5- to 30-minute buckets (28 of the 64 requests of bench-list's series mix) looked up
-- every bucket's first and last rows among the samples: some 2,000 primary key lookups a
-- request, about a third of PostgreSQL's time under that mix. With the values in the rollup
-- they are folded like the hours (internal/records/fold.go), and nothing is looked up.
--
-- Looking the edges up at insert costs two to four lookups per five minutes of a statement's
-- rows instead of per hour. The minute rollup paid for them: its rows (some 86,000 per 1M
-- samples) cost a second hash aggregation level and the largest upsert of the trigger (about
-- 0.95 s of a 1M-row finalize's 2.1 s in the trigger, auto_explain). What it served is served
-- without it: counts read the range's ragged ends from five-minute rows and the samples (at
-- most five minutes of them per end, through the primary key), and series of one-minute
-- buckets aggregate the samples themselves (at most 1,000 minutes of them, about 7,000 rows of
-- a 1M-row vehicle, instead of 1,000 minute rows; their edges are looked up as before).
ALTER TABLE sample_five_minutes
    ADD COLUMN speed_first double precision, ADD COLUMN speed_last double precision,
    ADD COLUMN odometer_first double precision, ADD COLUMN odometer_last double precision,
    ADD COLUMN soc_first smallint, ADD COLUMN soc_last smallint,
    ADD COLUMN elevation_first double precision, ADD COLUMN elevation_last double precision;

UPDATE sample_five_minutes h SET
    speed_first = (SELECT s.speed FROM samples s WHERE s.vehicle_key = h.vehicle_key AND s."timestamp" = h.speed_first_ts),
    speed_last = (SELECT s.speed FROM samples s WHERE s.vehicle_key = h.vehicle_key AND s."timestamp" = h.speed_last_ts),
    odometer_first = f.odometer, odometer_last = l.odometer, soc_first = f.soc, soc_last = l.soc,
    elevation_first = f.elevation, elevation_last = l.elevation
FROM samples f, samples l
WHERE f.vehicle_key = h.vehicle_key AND f."timestamp" = h.ts_min AND l.vehicle_key = h.vehicle_key AND l."timestamp" = h.ts_max;
ALTER TABLE sample_five_minutes
    ALTER COLUMN odometer_first SET NOT NULL, ALTER COLUMN odometer_last SET NOT NULL,
    ALTER COLUMN soc_first SET NOT NULL, ALTER COLUMN soc_last SET NOT NULL,
    ALTER COLUMN elevation_first SET NOT NULL, ALTER COLUMN elevation_last SET NOT NULL;
-- The update left every row's old version behind (see 00006).
CLUSTER sample_five_minutes USING sample_five_minutes_pkey;
ANALYZE sample_five_minutes;

DROP TABLE sample_minutes;

-- +goose StatementBegin
-- The same work_mem as 00011's (CREATE OR REPLACE drops a setting it does not name), and no JIT:
-- the planner costs the edge lookups at some 3 million (it guesses 40,000 five minutes and 17
-- rows a lookup), past jit_optimize_above_cost and jit_inline_above_cost, and compiling the
-- statement with optimization took about 2 s of the trigger's 2.7-2.8 s on an insert of 1M rows
-- of `vehicle-data sample` (auto_explain: the first node's first row came 2.1 s late); without
-- JIT the trigger took 0.70-0.83 s. It computes a few aggregates a row: nothing for JIT to win.
CREATE OR REPLACE FUNCTION samples_after_insert() RETURNS trigger LANGUAGE plpgsql SET work_mem = '64MB' SET jit = off AS $$
BEGIN
    -- See 00010: statistics that say samples is empty would plan the edge lookups below badly.
    IF EXISTS (SELECT FROM pg_class WHERE oid = 'samples'::regclass AND reltuples = 0 AND relpages > 0) THEN
        ANALYZE samples;
    END IF;
    WITH a AS (
        SELECT vehicle_key, date_bin('5 minutes', "timestamp", '2000-01-01 00:00:00+00') AS bucket, count(*)::integer AS n,
               min("timestamp") AS ts_min, max("timestamp") AS ts_max,
               count(speed)::integer AS speed_n, min(speed) AS speed_min, max(speed) AS speed_max, COALESCE(sum(speed), 0) AS speed_sum,
               min("timestamp") FILTER (WHERE speed IS NOT NULL) AS speed_first_ts,
               max("timestamp") FILTER (WHERE speed IS NOT NULL) AS speed_last_ts,
               min(odometer) AS odometer_min, max(odometer) AS odometer_max, sum(odometer) AS odometer_sum,
               min(soc) AS soc_min, max(soc) AS soc_max, sum(soc) AS soc_sum,
               min(elevation) AS elevation_min, max(elevation) AS elevation_max, sum(elevation) AS elevation_sum,
               min(id) AS id_min, max(id) AS id_max
        FROM inserted
        GROUP BY 1, 2
    ), f AS (
        -- The values at the five minutes' edges, looked up by primary key among the rows just
        -- inserted (an AFTER trigger sees them): two lookups, four when the edge rows have no
        -- speed. LIMIT 1 keeps each a nested-loop lookup whatever the planner guesses.
        SELECT a.*, sf.speed AS speed_first, sl.speed AS speed_last,
               fr.odometer AS odometer_first, l.odometer AS odometer_last, fr.soc AS soc_first, l.soc AS soc_last,
               fr.elevation AS elevation_first, l.elevation AS elevation_last
        FROM a
        CROSS JOIN LATERAL (SELECT s.speed, s.odometer, s.soc, s.elevation FROM samples s
                            WHERE s.vehicle_key = a.vehicle_key AND s."timestamp" = a.ts_min LIMIT 1) fr
        CROSS JOIN LATERAL (SELECT s.speed, s.odometer, s.soc, s.elevation FROM samples s
                            WHERE s.vehicle_key = a.vehicle_key AND s."timestamp" = a.ts_max LIMIT 1) l
        LEFT JOIN LATERAL (SELECT CASE WHEN a.speed_first_ts = a.ts_min THEN fr.speed ELSE
                               (SELECT s.speed FROM samples s WHERE s.vehicle_key = a.vehicle_key AND s."timestamp" = a.speed_first_ts) END AS speed) sf ON true
        LEFT JOIN LATERAL (SELECT CASE WHEN a.speed_last_ts = a.ts_max THEN l.speed ELSE
                               (SELECT s.speed FROM samples s WHERE s.vehicle_key = a.vehicle_key AND s."timestamp" = a.speed_last_ts) END AS speed) sl ON true
    ), fives AS (
        INSERT INTO sample_five_minutes AS t SELECT * FROM f ORDER BY vehicle_key, bucket
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
            id_min = LEAST(t.id_min, EXCLUDED.id_min), id_max = GREATEST(t.id_max, EXCLUDED.id_max),
            -- The values of whichever side holds the earlier (later) row; timestamps are unique
            -- per vehicle, so the two never tie.
            speed_first = CASE WHEN t.speed_first_ts IS NULL OR EXCLUDED.speed_first_ts < t.speed_first_ts THEN EXCLUDED.speed_first ELSE t.speed_first END,
            speed_last = CASE WHEN t.speed_last_ts IS NULL OR EXCLUDED.speed_last_ts > t.speed_last_ts THEN EXCLUDED.speed_last ELSE t.speed_last END,
            odometer_first = CASE WHEN EXCLUDED.ts_min < t.ts_min THEN EXCLUDED.odometer_first ELSE t.odometer_first END,
            odometer_last = CASE WHEN EXCLUDED.ts_max > t.ts_max THEN EXCLUDED.odometer_last ELSE t.odometer_last END,
            soc_first = CASE WHEN EXCLUDED.ts_min < t.ts_min THEN EXCLUDED.soc_first ELSE t.soc_first END,
            soc_last = CASE WHEN EXCLUDED.ts_max > t.ts_max THEN EXCLUDED.soc_last ELSE t.soc_last END,
            elevation_first = CASE WHEN EXCLUDED.ts_min < t.ts_min THEN EXCLUDED.elevation_first ELSE t.elevation_first END,
            elevation_last = CASE WHEN EXCLUDED.ts_max > t.ts_max THEN EXCLUDED.elevation_last ELSE t.elevation_last END
    ), h AS (
        -- An hour's edge values are those of its five minutes that hold its first and last
        -- rows: found among f by the bucket of the timestamp, with nothing looked up.
        SELECT h.*, sf.speed_first, sl.speed_last, ff.odometer_first, fl.odometer_last, ff.soc_first, fl.soc_last,
               ff.elevation_first, fl.elevation_last
        FROM (
            SELECT vehicle_key, date_bin('1 hour', bucket, '2000-01-01 00:00:00+00') AS bucket, sum(n)::integer AS n, min(ts_min) AS ts_min, max(ts_max) AS ts_max,
                   sum(speed_n)::integer AS speed_n, min(speed_min) AS speed_min, max(speed_max) AS speed_max, sum(speed_sum) AS speed_sum,
                   min(speed_first_ts) AS speed_first_ts, max(speed_last_ts) AS speed_last_ts,
                   min(odometer_min) AS odometer_min, max(odometer_max) AS odometer_max, sum(odometer_sum) AS odometer_sum,
                   min(soc_min) AS soc_min, max(soc_max) AS soc_max, sum(soc_sum)::bigint AS soc_sum,
                   min(elevation_min) AS elevation_min, max(elevation_max) AS elevation_max, sum(elevation_sum) AS elevation_sum,
                   min(id_min) AS id_min, max(id_max) AS id_max
            FROM f
            GROUP BY 1, 2
        ) h
        JOIN f ff ON ff.vehicle_key = h.vehicle_key AND ff.ts_min = h.ts_min
        JOIN f fl ON fl.vehicle_key = h.vehicle_key AND fl.ts_max = h.ts_max
        LEFT JOIN f sf ON sf.vehicle_key = h.vehicle_key AND sf.speed_first_ts = h.speed_first_ts
        LEFT JOIN f sl ON sl.vehicle_key = h.vehicle_key AND sl.speed_last_ts = h.speed_last_ts
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
            id_min = LEAST(t.id_min, EXCLUDED.id_min), id_max = GREATEST(t.id_max, EXCLUDED.id_max),
            speed_first = CASE WHEN t.speed_first_ts IS NULL OR EXCLUDED.speed_first_ts < t.speed_first_ts THEN EXCLUDED.speed_first ELSE t.speed_first END,
            speed_last = CASE WHEN t.speed_last_ts IS NULL OR EXCLUDED.speed_last_ts > t.speed_last_ts THEN EXCLUDED.speed_last ELSE t.speed_last END,
            odometer_first = CASE WHEN EXCLUDED.ts_min < t.ts_min THEN EXCLUDED.odometer_first ELSE t.odometer_first END,
            odometer_last = CASE WHEN EXCLUDED.ts_max > t.ts_max THEN EXCLUDED.odometer_last ELSE t.odometer_last END,
            soc_first = CASE WHEN EXCLUDED.ts_min < t.ts_min THEN EXCLUDED.soc_first ELSE t.soc_first END,
            soc_last = CASE WHEN EXCLUDED.ts_max > t.ts_max THEN EXCLUDED.soc_last ELSE t.soc_last END,
            elevation_first = CASE WHEN EXCLUDED.ts_min < t.ts_min THEN EXCLUDED.elevation_first ELSE t.elevation_first END,
            elevation_last = CASE WHEN EXCLUDED.ts_max > t.ts_max THEN EXCLUDED.elevation_last ELSE t.elevation_last END
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

-- +goose StatementBegin
-- Updates and deletes: the five minutes they touched, recomputed.
CREATE OR REPLACE FUNCTION samples_after_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS samples_touched (vehicle_key integer, bucket timestamptz) ON COMMIT DROP;
    TRUNCATE samples_touched;
    IF TG_OP = 'DELETE' THEN
        INSERT INTO samples_touched SELECT DISTINCT vehicle_key, date_bin('5 minutes', "timestamp", '2000-01-01 00:00:00+00') FROM old_rows;
    ELSE
        INSERT INTO samples_touched
        SELECT vehicle_key, date_bin('5 minutes', "timestamp", '2000-01-01 00:00:00+00') FROM old_rows
        UNION
        SELECT vehicle_key, date_bin('5 minutes', "timestamp", '2000-01-01 00:00:00+00') FROM new_rows;
    END IF;
    PERFORM samples_recompute();
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- The rollup rows of the five minutes in samples_touched, recomputed from the samples (deletes
-- and updates: rare, operators only), their edges looked up among the samples. Hours are
-- recomputed from their five minutes, edges included; vehicles from their hours. No JIT, as
-- for the insert trigger.
CREATE OR REPLACE FUNCTION samples_recompute() RETURNS void LANGUAGE plpgsql SET jit = off AS $$
BEGIN
    DELETE FROM sample_five_minutes m USING samples_touched t WHERE m.vehicle_key = t.vehicle_key AND m.bucket = t.bucket;
    INSERT INTO sample_five_minutes
    SELECT a.*, sf.speed, sl.speed, f.odometer, l.odometer, f.soc, l.soc, f.elevation, l.elevation
    FROM (
        SELECT s.vehicle_key, t.bucket, count(*), min(s."timestamp") AS ts_min, max(s."timestamp") AS ts_max,
               count(s.speed), min(s.speed), max(s.speed), COALESCE(sum(s.speed), 0),
               min(s."timestamp") FILTER (WHERE s.speed IS NOT NULL) AS speed_first_ts, max(s."timestamp") FILTER (WHERE s.speed IS NOT NULL) AS speed_last_ts,
               min(s.odometer), max(s.odometer), sum(s.odometer), min(s.soc), max(s.soc), sum(s.soc),
               min(s.elevation), max(s.elevation), sum(s.elevation), min(s.id), max(s.id)
        FROM samples_touched t
        JOIN samples s ON s.vehicle_key = t.vehicle_key AND s."timestamp" >= t.bucket AND s."timestamp" < t.bucket + interval '5 minutes'
        GROUP BY s.vehicle_key, t.bucket
    ) a
    CROSS JOIN LATERAL (SELECT s.odometer, s.soc, s.elevation FROM samples s WHERE s.vehicle_key = a.vehicle_key AND s."timestamp" = a.ts_min LIMIT 1) f
    CROSS JOIN LATERAL (SELECT s.odometer, s.soc, s.elevation FROM samples s WHERE s.vehicle_key = a.vehicle_key AND s."timestamp" = a.ts_max LIMIT 1) l
    LEFT JOIN LATERAL (SELECT s.speed FROM samples s WHERE s.vehicle_key = a.vehicle_key AND s."timestamp" = a.speed_first_ts LIMIT 1) sf ON true
    LEFT JOIN LATERAL (SELECT s.speed FROM samples s WHERE s.vehicle_key = a.vehicle_key AND s."timestamp" = a.speed_last_ts LIMIT 1) sl ON true;

    DELETE FROM sample_hours h USING (SELECT DISTINCT vehicle_key, date_trunc('hour', bucket, 'UTC') AS bucket FROM samples_touched) t
    WHERE h.vehicle_key = t.vehicle_key AND h.bucket = t.bucket;
    INSERT INTO sample_hours
    SELECT h.*, sf.speed_first, sl.speed_last, ff.odometer_first, fl.odometer_last, ff.soc_first, fl.soc_last, ff.elevation_first, fl.elevation_last
    FROM (
        SELECT m.vehicle_key, t.bucket, sum(m.n), min(m.ts_min) AS ts_min, max(m.ts_max) AS ts_max,
               sum(m.speed_n), min(m.speed_min), max(m.speed_max), sum(m.speed_sum), min(m.speed_first_ts) AS speed_first_ts, max(m.speed_last_ts) AS speed_last_ts,
               min(m.odometer_min), max(m.odometer_max), sum(m.odometer_sum), min(m.soc_min), max(m.soc_max), sum(m.soc_sum),
               min(m.elevation_min), max(m.elevation_max), sum(m.elevation_sum), min(m.id_min), max(m.id_max)
        FROM (SELECT DISTINCT vehicle_key, date_trunc('hour', bucket, 'UTC') AS bucket FROM samples_touched) t
        JOIN sample_five_minutes m ON m.vehicle_key = t.vehicle_key AND m.bucket >= t.bucket AND m.bucket < t.bucket + interval '1 hour'
        GROUP BY m.vehicle_key, t.bucket
    ) h
    -- The five minutes that hold the hour's edge rows, by primary key.
    JOIN sample_five_minutes ff ON ff.vehicle_key = h.vehicle_key AND ff.bucket = date_bin('5 minutes', h.ts_min, '2000-01-01 00:00:00+00')
    JOIN sample_five_minutes fl ON fl.vehicle_key = h.vehicle_key AND fl.bucket = date_bin('5 minutes', h.ts_max, '2000-01-01 00:00:00+00')
    LEFT JOIN sample_five_minutes sf ON sf.vehicle_key = h.vehicle_key AND sf.bucket = date_bin('5 minutes', h.speed_first_ts, '2000-01-01 00:00:00+00')
    LEFT JOIN sample_five_minutes sl ON sl.vehicle_key = h.vehicle_key AND sl.bucket = date_bin('5 minutes', h.speed_last_ts, '2000-01-01 00:00:00+00');

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

-- +goose Down
-- The minute rollup again, from the samples, and 00010's functions with 00011's setting.
CREATE TABLE sample_minutes (
    vehicle_key    integer          NOT NULL,
    bucket         timestamptz      NOT NULL,
    n              integer          NOT NULL,
    ts_min         timestamptz      NOT NULL,
    ts_max         timestamptz      NOT NULL,
    speed_n        integer          NOT NULL,
    speed_min      double precision,
    speed_max      double precision,
    speed_sum      double precision NOT NULL,
    speed_first_ts timestamptz,
    speed_last_ts  timestamptz,
    odometer_min   double precision NOT NULL,
    odometer_max   double precision NOT NULL,
    odometer_sum   double precision NOT NULL,
    soc_min        smallint         NOT NULL,
    soc_max        smallint         NOT NULL,
    soc_sum        bigint           NOT NULL,
    elevation_min  double precision NOT NULL,
    elevation_max  double precision NOT NULL,
    elevation_sum  double precision NOT NULL,
    id_min         bigint           NOT NULL,
    id_max         bigint           NOT NULL,
    CONSTRAINT sample_minutes_pkey PRIMARY KEY (vehicle_key, bucket)
);
INSERT INTO sample_minutes
SELECT vehicle_key, date_bin('1 minute', "timestamp", '2000-01-01 00:00:00+00'), count(*), min("timestamp"), max("timestamp"),
       count(speed), min(speed), max(speed), COALESCE(sum(speed), 0),
       min("timestamp") FILTER (WHERE speed IS NOT NULL), max("timestamp") FILTER (WHERE speed IS NOT NULL),
       min(odometer), max(odometer), sum(odometer), min(soc), max(soc), sum(soc),
       min(elevation), max(elevation), sum(elevation), min(id), max(id)
FROM samples GROUP BY 1, 2 ORDER BY 1, 2;
ANALYZE sample_minutes;

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION samples_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The hours' edge lookups below are planned on samples' statistics. An ANALYZE that ran
    -- while a large load went into an empty samples (autovacuum's, most often after a
    -- TRUNCATE or on a new database) saw no visible row and left relpages > 0 with reltuples = 0:
    -- every index then looked as good as the primary key for a lookup (each is costed at one
    -- row), and the plan taken read far more than a row a lookup: a 1M-row COPY ran for over ten
    -- minutes in this trigger's index scans (seen in make bench-ingest, at 00009). ANALYZE counts this
    -- transaction's own rows, so running it first gives the lookups their plan back; it costs
    -- about a second, once, in that state only.
    IF EXISTS (SELECT FROM pg_class WHERE oid = 'samples'::regclass AND reltuples = 0 AND relpages > 0) THEN
        ANALYZE samples;
    END IF;
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
    ), fives AS (
        -- The five-minute rows, from the minutes' (see the migration's head).
        INSERT INTO sample_five_minutes AS t
        SELECT vehicle_key, date_bin('5 minutes', bucket, '2000-01-01 00:00:00+00'), sum(n)::integer, min(ts_min), max(ts_max),
               sum(speed_n)::integer, min(speed_min), max(speed_max), sum(speed_sum), min(speed_first_ts), max(speed_last_ts),
               min(odometer_min), max(odometer_max), sum(odometer_sum), min(soc_min), max(soc_max), sum(soc_sum)::bigint,
               min(elevation_min), max(elevation_max), sum(elevation_sum), min(id_min), max(id_max) -- ids
        FROM m GROUP BY 1, 2 ORDER BY 1, 2
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
        -- The values at the hour's edges, looked up by primary key among the rows just inserted
        -- (an AFTER trigger sees them): two lookups an hour, four when the edge rows have no speed.
        -- LIMIT 1 keeps each a nested-loop lookup whatever the planner guesses of the hours.
        SELECT h.*, sf.speed AS speed_first, sl.speed AS speed_last,
               f.odometer AS odometer_first, l.odometer AS odometer_last, f.soc AS soc_first, l.soc AS soc_last,
               f.elevation AS elevation_first, l.elevation AS elevation_last
        FROM (
            SELECT vehicle_key, date_bin('1 hour', bucket, '2000-01-01 00:00:00+00') AS bucket, sum(n)::integer AS n, min(ts_min) AS ts_min, max(ts_max) AS ts_max,
                   sum(speed_n)::integer AS speed_n, min(speed_min) AS speed_min, max(speed_max) AS speed_max, sum(speed_sum) AS speed_sum,
                   min(speed_first_ts) AS speed_first_ts, max(speed_last_ts) AS speed_last_ts,
                   min(odometer_min) AS odometer_min, max(odometer_max) AS odometer_max, sum(odometer_sum) AS odometer_sum,
                   min(soc_min) AS soc_min, max(soc_max) AS soc_max, sum(soc_sum)::bigint AS soc_sum,
                   min(elevation_min) AS elevation_min, max(elevation_max) AS elevation_max, sum(elevation_sum) AS elevation_sum,
                   min(id_min) AS id_min, max(id_max) AS id_max -- ids
            FROM m
            GROUP BY 1, 2
        ) h
        CROSS JOIN LATERAL (SELECT s.speed, s.odometer, s.soc, s.elevation FROM samples s
                            WHERE s.vehicle_key = h.vehicle_key AND s."timestamp" = h.ts_min LIMIT 1) f
        CROSS JOIN LATERAL (SELECT s.speed, s.odometer, s.soc, s.elevation FROM samples s
                            WHERE s.vehicle_key = h.vehicle_key AND s."timestamp" = h.ts_max LIMIT 1) l
        LEFT JOIN LATERAL (SELECT CASE WHEN h.speed_first_ts = h.ts_min THEN f.speed ELSE
                               (SELECT s.speed FROM samples s WHERE s.vehicle_key = h.vehicle_key AND s."timestamp" = h.speed_first_ts) END AS speed) sf ON true
        LEFT JOIN LATERAL (SELECT CASE WHEN h.speed_last_ts = h.ts_max THEN l.speed ELSE
                               (SELECT s.speed FROM samples s WHERE s.vehicle_key = h.vehicle_key AND s."timestamp" = h.speed_last_ts) END AS speed) sl ON true
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
            id_min = LEAST(t.id_min, EXCLUDED.id_min), id_max = GREATEST(t.id_max, EXCLUDED.id_max), -- ids
            -- edges: the values of whichever side holds the earlier (later) row; timestamps are
            -- unique per vehicle, so the two never tie.
            speed_first = CASE WHEN t.speed_first_ts IS NULL OR EXCLUDED.speed_first_ts < t.speed_first_ts THEN EXCLUDED.speed_first ELSE t.speed_first END,
            speed_last = CASE WHEN t.speed_last_ts IS NULL OR EXCLUDED.speed_last_ts > t.speed_last_ts THEN EXCLUDED.speed_last ELSE t.speed_last END,
            odometer_first = CASE WHEN EXCLUDED.ts_min < t.ts_min THEN EXCLUDED.odometer_first ELSE t.odometer_first END,
            odometer_last = CASE WHEN EXCLUDED.ts_max > t.ts_max THEN EXCLUDED.odometer_last ELSE t.odometer_last END,
            soc_first = CASE WHEN EXCLUDED.ts_min < t.ts_min THEN EXCLUDED.soc_first ELSE t.soc_first END,
            soc_last = CASE WHEN EXCLUDED.ts_max > t.ts_max THEN EXCLUDED.soc_last ELSE t.soc_last END,
            elevation_first = CASE WHEN EXCLUDED.ts_min < t.ts_min THEN EXCLUDED.elevation_first ELSE t.elevation_first END,
            elevation_last = CASE WHEN EXCLUDED.ts_max > t.ts_max THEN EXCLUDED.elevation_last ELSE t.elevation_last END
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

-- +goose StatementBegin
-- The rollup rows of the minutes in samples_touched, recomputed from the samples (deletes and
-- updates: rare, operators only). Hours are recomputed from their minutes, and their edges
-- looked up among the samples; vehicles from their hours.
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

    -- Five-minute rows from their minutes (edges: none).
    DELETE FROM sample_five_minutes f USING (SELECT DISTINCT vehicle_key, date_bin('5 minutes', bucket, '2000-01-01 00:00:00+00') AS bucket FROM samples_touched) t
    WHERE f.vehicle_key = t.vehicle_key AND f.bucket = t.bucket;
    INSERT INTO sample_five_minutes
    SELECT m.vehicle_key, t.bucket, sum(m.n), min(m.ts_min), max(m.ts_max),
           sum(m.speed_n), min(m.speed_min), max(m.speed_max), sum(m.speed_sum), min(m.speed_first_ts), max(m.speed_last_ts),
           min(m.odometer_min), max(m.odometer_max), sum(m.odometer_sum), min(m.soc_min), max(m.soc_max), sum(m.soc_sum),
           min(m.elevation_min), max(m.elevation_max), sum(m.elevation_sum), min(m.id_min), max(m.id_max) -- ids
    FROM (SELECT DISTINCT vehicle_key, date_bin('5 minutes', bucket, '2000-01-01 00:00:00+00') AS bucket FROM samples_touched) t
    JOIN sample_minutes m ON m.vehicle_key = t.vehicle_key AND m.bucket >= t.bucket AND m.bucket < t.bucket + interval '5 minutes'
    GROUP BY m.vehicle_key, t.bucket;

    DELETE FROM sample_hours h USING (SELECT DISTINCT vehicle_key, date_trunc('hour', bucket, 'UTC') AS bucket FROM samples_touched) t
    WHERE h.vehicle_key = t.vehicle_key AND h.bucket = t.bucket;
    INSERT INTO sample_hours
    SELECT h.*, sf.speed, sl.speed, f.odometer, l.odometer, f.soc, l.soc, f.elevation, l.elevation -- edges
    FROM (
        SELECT m.vehicle_key, t.bucket, sum(m.n), min(m.ts_min) AS ts_min, max(m.ts_max) AS ts_max,
               sum(m.speed_n), min(m.speed_min), max(m.speed_max), sum(m.speed_sum), min(m.speed_first_ts) AS speed_first_ts, max(m.speed_last_ts) AS speed_last_ts,
               min(m.odometer_min), max(m.odometer_max), sum(m.odometer_sum), min(m.soc_min), max(m.soc_max), sum(m.soc_sum),
               min(m.elevation_min), max(m.elevation_max), sum(m.elevation_sum), min(m.id_min), max(m.id_max) -- ids
        FROM (SELECT DISTINCT vehicle_key, date_trunc('hour', bucket, 'UTC') AS bucket FROM samples_touched) t
        JOIN sample_minutes m ON m.vehicle_key = t.vehicle_key AND m.bucket >= t.bucket AND m.bucket < t.bucket + interval '1 hour'
        GROUP BY m.vehicle_key, t.bucket
    ) h
    CROSS JOIN LATERAL (SELECT s.odometer, s.soc, s.elevation FROM samples s WHERE s.vehicle_key = h.vehicle_key AND s."timestamp" = h.ts_min LIMIT 1) f
    CROSS JOIN LATERAL (SELECT s.odometer, s.soc, s.elevation FROM samples s WHERE s.vehicle_key = h.vehicle_key AND s."timestamp" = h.ts_max LIMIT 1) l
    LEFT JOIN LATERAL (SELECT s.speed FROM samples s WHERE s.vehicle_key = h.vehicle_key AND s."timestamp" = h.speed_first_ts LIMIT 1) sf ON true
    LEFT JOIN LATERAL (SELECT s.speed FROM samples s WHERE s.vehicle_key = h.vehicle_key AND s."timestamp" = h.speed_last_ts LIMIT 1) sl ON true;

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

ALTER FUNCTION samples_after_insert() SET work_mem = '64MB';

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION samples_after_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS samples_touched (vehicle_key integer, bucket timestamptz) ON COMMIT DROP;
    TRUNCATE samples_touched;
    IF TG_OP = 'DELETE' THEN
        INSERT INTO samples_touched SELECT DISTINCT vehicle_key, date_trunc('minute', "timestamp", 'UTC') FROM old_rows;
    ELSE
        INSERT INTO samples_touched
        SELECT vehicle_key, date_trunc('minute', "timestamp", 'UTC') FROM old_rows
        UNION
        SELECT vehicle_key, date_trunc('minute', "timestamp", 'UTC') FROM new_rows;
    END IF;
    PERFORM samples_recompute();
    RETURN NULL;
END
$$;
-- +goose StatementEnd

ALTER TABLE sample_five_minutes
    DROP COLUMN speed_first, DROP COLUMN speed_last, DROP COLUMN odometer_first, DROP COLUMN odometer_last,
    DROP COLUMN soc_first, DROP COLUMN soc_last, DROP COLUMN elevation_first, DROP COLUMN elevation_last;
