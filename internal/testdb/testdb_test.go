package testdb

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vehicle-data/vehicle-data/internal/database"
)

func TestMain(m *testing.M) { Main(m) }

func currentDatabase(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	var name string
	if err := pool.QueryRow(t.Context(), "SELECT current_database()").Scan(&name); err != nil {
		t.Fatal(err)
	}
	return name
}

func databaseExists(t *testing.T, name string) bool {
	t.Helper()
	var exists bool
	err := shared.srv.admin.QueryRow(t.Context(),
		"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists)
	if err != nil {
		t.Fatal(err)
	}
	return exists
}

func TestNewIsMigratedAndIsolated(t *testing.T) {
	first := New(t)
	if _, err := first.Exec(t.Context(), `INSERT INTO vehicle_data (vehicle_id, "timestamp", odometer, soc, elevation)
		VALUES ('v1', now(), 1, 50, 0)`); err != nil {
		t.Fatalf("insert into the migrated schema: %v", err)
	}
	second := New(t)

	if a, b := currentDatabase(t, first), currentDatabase(t, second); a == b {
		t.Fatalf("both pools use database %s, want two databases", a)
	}
	var n int
	if err := second.QueryRow(t.Context(), "SELECT count(*) FROM vehicle_data").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("second database holds %d rows, want 0 (first's row leaked)", n)
	}
	pending, err := database.Pending(t.Context(), second)
	if err != nil {
		t.Fatal(err)
	}
	if pending {
		t.Error("New database has pending migrations, want none")
	}
}

// Parallel tests clone the template at the same time and must each see only their own rows.
func TestNewInParallel(t *testing.T) {
	for i := range 4 {
		vehicle := fmt.Sprintf("vehicle-%d", i)
		t.Run(vehicle, func(t *testing.T) {
			t.Parallel()
			pool := New(t)
			if _, err := pool.Exec(t.Context(), `INSERT INTO vehicle_data (vehicle_id, "timestamp", odometer, soc, elevation)
				VALUES ($1, now(), 1, 50, 0)`, vehicle); err != nil {
				t.Fatal(err)
			}
			var got []string
			rows, err := pool.Query(t.Context(), "SELECT vehicle_id FROM vehicles")
			if err != nil {
				t.Fatal(err)
			}
			got, err = pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0] != vehicle {
				t.Errorf("vehicles = %v, want [%s]", got, vehicle)
			}
		})
	}
}

func TestDatabaseDroppedAfterTest(t *testing.T) {
	var name string
	var leftOpen *pgx.Conn
	t.Run("user", func(t *testing.T) {
		u := NewURL(t)
		// A connection the test forgot to close must not keep the database alive.
		conn, err := pgx.Connect(context.Background(), u)
		if err != nil {
			t.Fatal(err)
		}
		leftOpen = conn
		name = conn.Config().Database
		if !databaseExists(t, name) {
			t.Fatalf("database %s missing during its test", name)
		}
	})
	defer leftOpen.Close(context.Background())
	if databaseExists(t, name) {
		t.Errorf("database %s still exists after its test ended", name)
	}
}

func TestNewUnmigratedURL(t *testing.T) {
	pool, err := database.Open(t.Context(), NewUnmigratedURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	pending, err := database.Pending(t.Context(), pool)
	if err != nil {
		t.Fatal(err)
	}
	if !pending {
		t.Error("unmigrated database reports no pending migrations")
	}
}

func TestWithDatabase(t *testing.T) {
	tests := []struct {
		name string
		conn string
		want string
	}{
		{"url", "postgres://u:p@localhost:5432/postgres?sslmode=disable", "postgres://u:p@localhost:5432/x?sslmode=disable"},
		{"url without database", "postgresql://localhost", "postgresql://localhost/x"},
		{"unix socket url", "postgres://postgres@/vehicle_data?host=%2Ftmp%2Fpg&port=5432", "postgres://postgres@/x?host=%2Ftmp%2Fpg&port=5432"},
		{"key value", "host=localhost dbname=postgres", "host=localhost dbname=postgres dbname=x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := withDatabase(tt.conn, "x")
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("withDatabase(%q) = %q, want %q", tt.conn, got, tt.want)
			}
			cfg, err := pgx.ParseConfig(got)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Database != "x" {
				t.Errorf("pgx reads database %q from %q, want x", cfg.Database, got)
			}
		})
	}
}

func TestUnknownBackend(t *testing.T) {
	t.Setenv(EnvBackend, "bogus")
	_, err := startBackend(t.Context(), t.Logf)
	if err == nil || !strings.Contains(err.Error(), EnvBackend) {
		t.Errorf("startBackend with %s=bogus: error %v, want one naming %s", EnvBackend, err, EnvBackend)
	}
}
