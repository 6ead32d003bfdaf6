-- +goose Up
-- How many of each hour's samples hold each shift state, and the smallest and largest of their
-- ids: what pages ordered by shift_state alone seek with (internal/records, statePage).
--
-- No index serves that order (the optional one, db/optional/shift_state_index.sql, costs every
-- ingest a third more), so such a page sorted every matching row: 0.5-0.85 s within a vehicle
-- at 10M rows, up to 3.7 s across vehicles or deep in a range. A page in order (shift_state, id)
-- is one state's rows in id order; these rows say which states come before the page and by how
-- many rows, and in which stretch of the ids the state's rows lie, so the page is a scan of the
-- id index from a cut in that stretch, as cutSeek's pages by id are (sample_hours' id bounds).
--
-- A vehicle's hour holds a few states (D, N, P, R or none; mostly D or none): some 6,000 rows
-- per 1M samples of `vehicle-data sample`. Rows without a state are kept as a NULL shift_state,
-- so the summary sorts as the samples do; two partial unique indexes take the place of a
-- primary key, since a NULL cannot be in one (NULLS NOT DISTINCT needs PostgreSQL 15, this
-- schema 14). Both include vehicle_key, the distribution key on Citus (docs/scaling.md).
CREATE TABLE sample_hour_states (
    vehicle_key integer     NOT NULL,
    bucket      timestamptz NOT NULL,
    shift_state text,
    n           integer     NOT NULL,
    id_min      bigint      NOT NULL,
    id_max      bigint      NOT NULL
);
CREATE UNIQUE INDEX sample_hour_states_key ON sample_hour_states (vehicle_key, bucket, shift_state) WHERE shift_state IS NOT NULL;
CREATE UNIQUE INDEX sample_hour_states_none_key ON sample_hour_states (vehicle_key, bucket) WHERE shift_state IS NULL;

INSERT INTO sample_hour_states
SELECT vehicle_key, date_bin('1 hour', "timestamp", '2000-01-01 00:00:00+00'), shift_state, count(*), min(id), max(id)
FROM samples GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;
ANALYZE sample_hour_states;

-- +goose StatementBegin
-- Its own statement-level trigger, beside samples_after_insert: the two read the same
-- transition table. One grouping of the statement's rows and two upserts, the rows with a
-- state and those without, each against its own unique index. work_mem and JIT as for
-- samples_after_insert (00011, 00012).
CREATE FUNCTION sample_hour_states_after_insert() RETURNS trigger LANGUAGE plpgsql SET work_mem = '64MB' SET jit = off AS $$
BEGIN
    WITH g AS (
        SELECT vehicle_key, date_bin('1 hour', "timestamp", '2000-01-01 00:00:00+00') AS bucket, shift_state,
               count(*)::integer AS n, min(id) AS id_min, max(id) AS id_max
        FROM inserted
        GROUP BY 1, 2, 3
    ), stated AS (
        INSERT INTO sample_hour_states AS t SELECT * FROM g WHERE shift_state IS NOT NULL ORDER BY 1, 2, 3
        ON CONFLICT (vehicle_key, bucket, shift_state) WHERE shift_state IS NOT NULL DO UPDATE SET
            n = t.n + EXCLUDED.n, id_min = LEAST(t.id_min, EXCLUDED.id_min), id_max = GREATEST(t.id_max, EXCLUDED.id_max)
    )
    INSERT INTO sample_hour_states AS t SELECT * FROM g WHERE shift_state IS NULL ORDER BY 1, 2
    ON CONFLICT (vehicle_key, bucket) WHERE shift_state IS NULL DO UPDATE SET
        n = t.n + EXCLUDED.n, id_min = LEAST(t.id_min, EXCLUDED.id_min), id_max = GREATEST(t.id_max, EXCLUDED.id_max);
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- Updates and deletes (rare, operators only): the hours they touched, recomputed from the
-- samples.
CREATE FUNCTION sample_hour_states_after_change() RETURNS trigger LANGUAGE plpgsql SET jit = off AS $$
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS states_touched (vehicle_key integer, bucket timestamptz) ON COMMIT DROP;
    TRUNCATE states_touched;
    IF TG_OP = 'DELETE' THEN
        INSERT INTO states_touched SELECT DISTINCT vehicle_key, date_bin('1 hour', "timestamp", '2000-01-01 00:00:00+00') FROM old_rows;
    ELSE
        INSERT INTO states_touched
        SELECT vehicle_key, date_bin('1 hour', "timestamp", '2000-01-01 00:00:00+00') FROM old_rows
        UNION
        SELECT vehicle_key, date_bin('1 hour', "timestamp", '2000-01-01 00:00:00+00') FROM new_rows;
    END IF;
    DELETE FROM sample_hour_states h USING states_touched t WHERE h.vehicle_key = t.vehicle_key AND h.bucket = t.bucket;
    INSERT INTO sample_hour_states
    SELECT s.vehicle_key, t.bucket, s.shift_state, count(*), min(s.id), max(s.id)
    FROM states_touched t
    JOIN samples s ON s.vehicle_key = t.vehicle_key AND s."timestamp" >= t.bucket AND s."timestamp" < t.bucket + interval '1 hour'
    GROUP BY 1, 2, 3;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER samples_states_insert AFTER INSERT ON samples
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION sample_hour_states_after_insert();
CREATE TRIGGER samples_states_delete AFTER DELETE ON samples
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION sample_hour_states_after_change();
CREATE TRIGGER samples_states_update AFTER UPDATE ON samples
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION sample_hour_states_after_change();

-- +goose Down
DROP TRIGGER samples_states_update ON samples;
DROP TRIGGER samples_states_delete ON samples;
DROP TRIGGER samples_states_insert ON samples;
DROP FUNCTION sample_hour_states_after_change();
DROP FUNCTION sample_hour_states_after_insert();
DROP TABLE sample_hour_states;
