-- +goose Up
-- Secrets every replica shares. 'cursor' signs the list's pagination cursors, so that a cursor
-- made by one replica is honoured by another and an altered one is refused. 32 bytes from
-- gen_random_uuid(), which draws on the server's strong random source (core since PG 13).
CREATE TABLE server_secrets (
    name  text  PRIMARY KEY,
    value bytea NOT NULL CHECK (octet_length(value) >= 16)
);

INSERT INTO server_secrets (name, value)
VALUES ('cursor', decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'));

-- +goose Down
DROP TABLE server_secrets;
