-- name: GetServerSecret :one
SELECT value
FROM server_secrets
WHERE name = @name;
