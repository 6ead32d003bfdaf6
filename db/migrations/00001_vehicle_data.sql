-- +goose Up
-- Telemetry samples. Every unique constraint includes vehicle_id so that the table can be
-- distributed by vehicle_id (Citus) without changing the schema.
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

-- Retrieve by id. Ids come from the identity sequence, so they are unique without a unique
-- index (which could not include vehicle_id here).
CREATE INDEX vehicle_data_id_idx ON vehicle_data (id);
-- The default list order across all vehicles: ORDER BY timestamp, id.
CREATE INDEX vehicle_data_timestamp_id_idx ON vehicle_data ("timestamp", id);

-- Per-vehicle figures, so that count without filters, vehicleIDs and /vehicles never scan
-- vehicle_data. Kept by statement-level triggers in the same transaction as the change.
CREATE TABLE vehicles (
    vehicle_id      text        PRIMARY KEY,
    record_count    bigint      NOT NULL CHECK (record_count >= 0),
    first_timestamp timestamptz NOT NULL,
    last_timestamp  timestamptz NOT NULL
);

-- +goose StatementBegin
CREATE FUNCTION vehicles_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO vehicles AS v (vehicle_id, record_count, first_timestamp, last_timestamp)
    SELECT vehicle_id, count(*), min("timestamp"), max("timestamp")
    FROM inserted
    GROUP BY vehicle_id
    ORDER BY vehicle_id -- a fixed lock order keeps concurrent inserts from deadlocking
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
    -- Deletes are rare (operators only): recompute the touched vehicles exactly.
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

-- +goose Down
DROP TABLE vehicles;
DROP TABLE vehicle_data;
DROP FUNCTION vehicles_after_insert();
DROP FUNCTION vehicles_after_delete();
