-- +goose Up
-- Fleet scale. The samples now live in `samples`, keyed by a 4-byte vehicle_key instead of the
-- up to 100-character vehicle_id repeated in every row and every index entry (at 10M rows with
-- 36-character UUIDs the old primary key alone was 996 MB). `vehicle_data` stays, as a view
-- with the old columns, for operators and their tools; it also takes INSERT, UPDATE and DELETE.
--
-- Per-vehicle per-minute and per-hour rollups (sample_minutes, sample_hours) are kept in the
-- same transaction as the inserts, like `vehicles`: they answer counts over a time range and
-- the series endpoint's buckets without reading the raw rows. They hold only aggregates that
-- merge by addition, min and max (so the trigger is one pass of hash aggregation); the series
-- reads the first and last values of a bucket from the rows at the timestamps they record.
--
-- Citus: samples, sample_minutes and sample_hours are distributed by vehicle_key (every
-- primary key and unique index includes it); vehicles is small and becomes a reference table.

ALTER TABLE vehicles ADD COLUMN vehicle_key integer NOT NULL GENERATED ALWAYS AS IDENTITY;
ALTER TABLE vehicles ADD CONSTRAINT vehicles_vehicle_key_key UNIQUE (vehicle_key);
-- A vehicle gets its key before its first sample goes in; until then it has no time span.
ALTER TABLE vehicles
    ALTER COLUMN record_count SET DEFAULT 0,
    ALTER COLUMN first_timestamp DROP NOT NULL,
    ALTER COLUMN last_timestamp DROP NOT NULL;

-- 8-byte columns first: no alignment padding between them.
CREATE TABLE samples (
    id          bigint           NOT NULL GENERATED ALWAYS AS IDENTITY,
    "timestamp" timestamptz      NOT NULL,
    speed       double precision CHECK (speed >= 0 AND speed <> 'Infinity'),
    odometer    double precision NOT NULL CHECK (odometer >= 0 AND odometer <> 'Infinity'),
    elevation   double precision NOT NULL CHECK (elevation > '-Infinity' AND elevation < 'Infinity'),
    -- No foreign key: its per-row check would cost every ingest; a vehicles row is only ever
    -- deleted when no sample of it is left.
    vehicle_key integer          NOT NULL,
    soc         smallint         NOT NULL CHECK (soc BETWEEN 0 AND 100),
    shift_state text             CHECK (char_length(shift_state) <= 20),
    -- INCLUDE (id): a deep page ordered by timestamp is found by an index-only scan, and the
    -- 100 rows of it are then fetched by id (a "deferred join").
    CONSTRAINT samples_pkey PRIMARY KEY (vehicle_key, "timestamp") INCLUDE (id)
);

-- Index-only scans (deep pages, counts' edges) need the visibility map set, which autovacuum
-- does after inserts of 20% of the table by default: at 10M rows a 1M-row upload would never
-- trigger it. 1% keeps it current without vacuuming after every small create.
ALTER TABLE samples SET (autovacuum_vacuum_insert_scale_factor = 0.01, autovacuum_analyze_scale_factor = 0.02);

-- Retrieve by id, and the deferred join's fetch.
CREATE INDEX samples_id_idx ON samples (id);
-- The default list order across all vehicles: ORDER BY timestamp, id.
CREATE INDEX samples_timestamp_id_idx ON samples ("timestamp", id);
-- The dashboard's other orderings within a vehicle, each with the timestamp so that a time range
-- is filtered in the index (index-only) and deep pages need no heap visit until the last 100.
-- Only these two: every index costs every ingest (see README, "Performance").
CREATE INDEX samples_odometer_idx ON samples (vehicle_key, odometer, id) INCLUDE ("timestamp");
CREATE INDEX samples_speed_idx ON samples (vehicle_key, speed, id) INCLUDE ("timestamp");

CREATE TABLE sample_minutes (
    vehicle_key    integer          NOT NULL,
    bucket         timestamptz      NOT NULL, -- start of the UTC minute (or hour)
    n              integer          NOT NULL,
    ts_min         timestamptz      NOT NULL,
    ts_max         timestamptz      NOT NULL,
    speed_n        integer          NOT NULL, -- non-null speeds
    speed_min      double precision,
    speed_max      double precision,
    speed_sum      double precision NOT NULL,
    speed_first_ts timestamptz,               -- earliest and latest sample with a speed
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
    CONSTRAINT sample_minutes_pkey PRIMARY KEY (vehicle_key, bucket)
);
CREATE TABLE sample_hours (LIKE sample_minutes INCLUDING ALL);

-- The existing rows, with their ids; the sequence goes on where the old one was.
INSERT INTO samples (id, "timestamp", speed, odometer, elevation, vehicle_key, soc, shift_state) OVERRIDING SYSTEM VALUE
SELECT d.id, d."timestamp", d.speed, d.odometer, d.elevation, v.vehicle_key, d.soc, d.shift_state
FROM vehicle_data d JOIN vehicles v ON v.vehicle_id = d.vehicle_id;
SELECT setval(pg_get_serial_sequence('samples', 'id'), last_value, is_called) FROM vehicle_data_id_seq;
DROP TABLE vehicle_data;
DROP FUNCTION vehicles_after_insert();
DROP FUNCTION vehicles_after_delete();

-- +goose StatementBegin
-- The rollup rows of the minutes in samples_touched, recomputed from the samples (deletes and
-- updates: rare, operators only). Hours are recomputed from their minutes, vehicles from their
-- hours.
CREATE FUNCTION samples_recompute() RETURNS void LANGUAGE plpgsql AS $$
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
CREATE FUNCTION samples_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
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

-- +goose StatementBegin
CREATE FUNCTION samples_after_change() RETURNS trigger LANGUAGE plpgsql AS $$
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

CREATE TRIGGER samples_insert AFTER INSERT ON samples
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION samples_after_insert();
CREATE TRIGGER samples_delete AFTER DELETE ON samples
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION samples_after_change();
CREATE TRIGGER samples_update AFTER UPDATE ON samples
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION samples_after_change();

-- The rollups of the rows moved over above.
INSERT INTO sample_minutes
SELECT vehicle_key, date_trunc('minute', "timestamp", 'UTC'), count(*), min("timestamp"), max("timestamp"),
       count(speed), min(speed), max(speed), COALESCE(sum(speed), 0),
       min("timestamp") FILTER (WHERE speed IS NOT NULL), max("timestamp") FILTER (WHERE speed IS NOT NULL),
       min(odometer), max(odometer), sum(odometer), min(soc), max(soc), sum(soc), min(elevation), max(elevation), sum(elevation)
FROM samples GROUP BY 1, 2;
INSERT INTO sample_hours
SELECT vehicle_key, date_trunc('hour', bucket, 'UTC'), sum(n), min(ts_min), max(ts_max),
       sum(speed_n), min(speed_min), max(speed_max), sum(speed_sum), min(speed_first_ts), max(speed_last_ts),
       min(odometer_min), max(odometer_max), sum(odometer_sum), min(soc_min), max(soc_max), sum(soc_sum),
       min(elevation_min), max(elevation_max), sum(elevation_sum)
FROM sample_minutes GROUP BY 1, 2;

-- +goose StatementBegin
-- The key of a vehicle, made on its first use. Concurrent first uses agree: the loser of the
-- insert reads the winner's row.
CREATE FUNCTION vehicle_key_for(p_vehicle_id text) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE k integer;
BEGIN
    SELECT vehicle_key INTO k FROM vehicles WHERE vehicle_id = p_vehicle_id;
    IF k IS NULL THEN
        INSERT INTO vehicles (vehicle_id) VALUES (p_vehicle_id)
        ON CONFLICT (vehicle_id) DO NOTHING
        RETURNING vehicle_key INTO k;
        IF k IS NULL THEN
            SELECT vehicle_key INTO k FROM vehicles WHERE vehicle_id = p_vehicle_id;
        END IF;
    END IF;
    RETURN k;
END
$$;
-- +goose StatementEnd

-- The old table's columns, for operators: reads join the vehicle id back in.
CREATE VIEW vehicle_data AS
SELECT s.id, v.vehicle_id, s."timestamp", s.speed, s.odometer, s.soc, s.elevation, s.shift_state
FROM samples s JOIN vehicles v ON v.vehicle_key = s.vehicle_key;

-- +goose StatementBegin
-- Writes through the view, row by row: for operators and tests, not for bulk loads (the service
-- writes to samples directly).
CREATE FUNCTION vehicle_data_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO samples (vehicle_key, "timestamp", speed, odometer, soc, elevation, shift_state)
        VALUES (vehicle_key_for(NEW.vehicle_id), NEW."timestamp", NEW.speed, NEW.odometer, NEW.soc, NEW.elevation, NEW.shift_state)
        RETURNING id INTO NEW.id;
        RETURN NEW;
    ELSIF TG_OP = 'UPDATE' THEN
        UPDATE samples SET vehicle_key = vehicle_key_for(NEW.vehicle_id), "timestamp" = NEW."timestamp", speed = NEW.speed,
            odometer = NEW.odometer, soc = NEW.soc, elevation = NEW.elevation, shift_state = NEW.shift_state
        WHERE id = OLD.id;
        RETURN NEW;
    END IF;
    DELETE FROM samples WHERE id = OLD.id;
    RETURN OLD;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER vehicle_data_write INSTEAD OF INSERT OR UPDATE OR DELETE ON vehicle_data
    FOR EACH ROW EXECUTE FUNCTION vehicle_data_write();

-- +goose Down
DROP VIEW vehicle_data;
DROP FUNCTION vehicle_data_write();
DROP FUNCTION vehicle_key_for(text);
CREATE TABLE vehicle_data (
    id          bigint           NOT NULL GENERATED ALWAYS AS IDENTITY,
    vehicle_id  text             NOT NULL CHECK (char_length(vehicle_id) BETWEEN 1 AND 100),
    "timestamp" timestamptz      NOT NULL,
    speed       double precision CHECK (speed >= 0 AND speed <> 'Infinity'),
    odometer    double precision NOT NULL CHECK (odometer >= 0 AND odometer <> 'Infinity'),
    soc         smallint         NOT NULL CHECK (soc BETWEEN 0 AND 100),
    elevation   double precision NOT NULL CHECK (elevation > '-Infinity' AND elevation < 'Infinity'),
    shift_state text             CHECK (char_length(shift_state) <= 20),
    CONSTRAINT vehicle_data_pkey PRIMARY KEY (vehicle_id, "timestamp")
);
INSERT INTO vehicle_data (id, vehicle_id, "timestamp", speed, odometer, soc, elevation, shift_state) OVERRIDING SYSTEM VALUE
SELECT s.id, v.vehicle_id, s."timestamp", s.speed, s.odometer, s.soc, s.elevation, s.shift_state
FROM samples s JOIN vehicles v ON v.vehicle_key = s.vehicle_key;
SELECT setval(pg_get_serial_sequence('vehicle_data', 'id'), last_value, is_called) FROM samples_id_seq;
CREATE INDEX vehicle_data_id_idx ON vehicle_data (id);
CREATE INDEX vehicle_data_timestamp_id_idx ON vehicle_data ("timestamp", id);
DROP TABLE samples;
DROP TABLE sample_minutes;
DROP TABLE sample_hours;
DROP FUNCTION samples_after_insert();
DROP FUNCTION samples_after_change();
DROP FUNCTION samples_recompute();
DELETE FROM vehicles WHERE record_count = 0;
ALTER TABLE vehicles DROP COLUMN vehicle_key;
ALTER TABLE vehicles ALTER COLUMN first_timestamp SET NOT NULL, ALTER COLUMN last_timestamp SET NOT NULL;
-- +goose StatementBegin
CREATE FUNCTION vehicles_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO vehicles AS v (vehicle_id, record_count, first_timestamp, last_timestamp)
    SELECT vehicle_id, count(*), min("timestamp"), max("timestamp")
    FROM inserted
    GROUP BY vehicle_id
    ORDER BY vehicle_id
    ON CONFLICT (vehicle_id) DO UPDATE SET
        record_count    = v.record_count + EXCLUDED.record_count,
        first_timestamp = LEAST(v.first_timestamp, EXCLUDED.first_timestamp),
        last_timestamp  = GREATEST(v.last_timestamp, EXCLUDED.last_timestamp);
    RETURN NULL;
END
$$;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE FUNCTION vehicles_after_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM vehicles v
    WHERE v.vehicle_id IN (SELECT DISTINCT vehicle_id FROM deleted)
      AND NOT EXISTS (SELECT 1 FROM vehicle_data d WHERE d.vehicle_id = v.vehicle_id);
    UPDATE vehicles v SET
        record_count    = s.n,
        first_timestamp = s.first_ts,
        last_timestamp  = s.last_ts
    FROM (
        SELECT d.vehicle_id, count(*) AS n, min(d."timestamp") AS first_ts, max(d."timestamp") AS last_ts
        FROM vehicle_data d
        WHERE d.vehicle_id IN (SELECT DISTINCT vehicle_id FROM deleted)
        GROUP BY d.vehicle_id
    ) s
    WHERE v.vehicle_id = s.vehicle_id;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER vehicle_data_count_insert
    AFTER INSERT ON vehicle_data
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION vehicles_after_insert();
CREATE TRIGGER vehicle_data_count_delete
    AFTER DELETE ON vehicle_data
    REFERENCING OLD TABLE AS deleted
    FOR EACH STATEMENT EXECUTE FUNCTION vehicles_after_delete();
