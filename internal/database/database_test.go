package database_test

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vehicle-data/vehicle-data/db/migrations"
	"github.com/vehicle-data/vehicle-data/internal/database"
	"github.com/vehicle-data/vehicle-data/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

func openUnmigrated(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := database.Open(t.Context(), testdb.NewUnmigratedURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func tableExists(t *testing.T, pool *pgxpool.Pool, name string) bool {
	t.Helper()
	var exists bool
	if err := pool.QueryRow(t.Context(), "SELECT to_regclass($1) IS NOT NULL", name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	return exists
}

func status(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	var b strings.Builder
	if err := database.MigrateStatus(t.Context(), pool, &b); err != nil {
		t.Fatalf("MigrateStatus: %v", err)
	}
	return b.String()
}

// appliedCount counts the applied migrations in MigrateStatus's table.
func appliedCount(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	out := status(t, pool)
	if !strings.Contains(out, "00001_vehicle_data.sql") {
		t.Errorf("status lacks the first migration:\n%s", out)
	}
	n := 0
	for _, line := range strings.Split(out, "\n") {
		if fields := strings.Fields(line); len(fields) >= 3 && fields[2] == "applied" {
			n++
		}
	}
	return n
}

// The steps share one database and run in order, each checking readiness afterwards.
func TestMigrations(t *testing.T) {
	files, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("no migrations embedded (%v)", err)
	}
	all := len(files)
	downAll := func(ctx context.Context, pool *pgxpool.Pool) error {
		for range all - 1 {
			if err := database.MigrateDown(ctx, pool); err != nil {
				return err
			}
		}
		return nil
	}

	pool := openUnmigrated(t)
	steps := []struct {
		name         string
		run          func(context.Context, *pgxpool.Pool) error
		wantErr      string // substring; empty means success
		wantReady    bool
		wantTable    bool // vehicle_data, made by the first migration
		wantGooseTbl bool // the probes must not create goose's table before anything migrates
		wantApplied  int
	}{
		{name: "fresh", wantReady: false, wantTable: false, wantGooseTbl: false, wantApplied: 0},
		{name: "up", run: database.MigrateUp, wantReady: true, wantTable: true, wantGooseTbl: true, wantApplied: all},
		{name: "up again is a no-op", run: database.MigrateUp, wantReady: true, wantTable: true, wantGooseTbl: true, wantApplied: all},
		{name: "down one step", run: database.MigrateDown, wantReady: false, wantTable: all > 1, wantGooseTbl: true, wantApplied: all - 1},
		{name: "down the rest", run: downAll, wantReady: false, wantTable: false, wantGooseTbl: true, wantApplied: 0},
		{name: "down past the start", run: database.MigrateDown, wantErr: "no applied migration", wantReady: false, wantTable: false, wantGooseTbl: true, wantApplied: 0},
		{name: "up after down", run: database.MigrateUp, wantReady: true, wantTable: true, wantGooseTbl: true, wantApplied: all},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			if step.run != nil {
				err := step.run(t.Context(), pool)
				switch {
				case step.wantErr == "" && err != nil:
					t.Fatalf("got error %v, want none", err)
				case step.wantErr != "" && (err == nil || !strings.Contains(err.Error(), step.wantErr)):
					t.Fatalf("got error %v, want one containing %q", err, step.wantErr)
				}
			}

			err := database.CheckReady(t.Context(), pool)
			if got := err == nil; got != step.wantReady {
				t.Errorf("CheckReady = %v, want ready %v", err, step.wantReady)
			}
			if err != nil && !errors.Is(err, database.ErrNotMigrated) {
				t.Errorf("CheckReady error %v does not wrap ErrNotMigrated", err)
			}
			pending, err := database.Pending(t.Context(), pool)
			if err != nil {
				t.Fatal(err)
			}
			if pending == step.wantReady {
				t.Errorf("Pending = %v, want %v", pending, !step.wantReady)
			}
			if got := tableExists(t, pool, "vehicle_data"); got != step.wantTable {
				t.Errorf("vehicle_data exists = %v, want %v", got, step.wantTable)
			}
			// Checked before MigrateStatus, which (like every goose command) creates the table.
			if got := tableExists(t, pool, "goose_db_version"); got != step.wantGooseTbl {
				t.Errorf("goose_db_version exists = %v, want %v", got, step.wantGooseTbl)
			}
			if got := appliedCount(t, pool); got != step.wantApplied {
				t.Errorf("status shows %d applied migrations, want %d", got, step.wantApplied)
			}
		})
	}
}

// Replicas starting together must not apply the same migration twice.
func TestMigrateUpConcurrently(t *testing.T) {
	pool := openUnmigrated(t)
	const replicas = 3
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Go(func() { errs[i] = database.MigrateUp(t.Context(), pool) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: MigrateUp: %v", i, err)
		}
	}
	if err := database.CheckReady(t.Context(), pool); err != nil {
		t.Errorf("CheckReady after concurrent migrations: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name    string
		url     string
		wantErr string
	}{
		{"empty", "", "empty connection URL"},
		{"unparsable", "postgres://u:sekret@host:notaport/db", "open database"},
		{"nobody listening", "postgres://u:sekret@127.0.0.1:1/db?connect_timeout=5", "127.0.0.1:1/db"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool, err := database.Open(t.Context(), tt.url)
			if err == nil {
				pool.Close()
				t.Fatalf("Open(%q): got nil error", tt.url)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Open(%q) error %q, want it to contain %q", tt.url, err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "sekret") {
				t.Errorf("Open error %q reveals the password", err)
			}
		})
	}
}

func TestCheckReadyUnreachable(t *testing.T) {
	// pgxpool.New connects lazily, so this pool exists while its server does not answer.
	pool, err := pgxpool.New(t.Context(), "postgres://u@127.0.0.1:1/db?connect_timeout=5")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	err = database.CheckReady(t.Context(), pool)
	if err == nil || !strings.Contains(err.Error(), "database unreachable") {
		t.Errorf("CheckReady = %v, want a database unreachable error", err)
	}
	if errors.Is(err, database.ErrNotMigrated) {
		t.Errorf("CheckReady = %v: an unreachable database is not a migration problem", err)
	}
}

func TestNilPool(t *testing.T) {
	ctx := context.Background()
	checks := map[string]error{
		"MigrateUp":     database.MigrateUp(ctx, nil),
		"MigrateDown":   database.MigrateDown(ctx, nil),
		"MigrateStatus": database.MigrateStatus(ctx, nil, &strings.Builder{}),
		"CheckReady":    database.CheckReady(ctx, nil),
	}
	for name, err := range checks {
		if err == nil {
			t.Errorf("%s(nil pool): got nil error", name)
		}
	}
}

// Every pool's sessions check for a vanished client (a killed server's backends stop at once
// and release their locks); only short requests carry the statement and lock timeouts.
func TestPoolSessionSettings(t *testing.T) {
	pools, err := database.OpenPools(t.Context(), testdb.NewURL(t), database.PoolSizes{
		Interactive: 1, Sorts: 1, Export: 1, Ingest: 2, StatementTimeout: 1500 * time.Millisecond, LockTimeout: 700 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer pools.Close()
	show := func(p *pgxpool.Pool, name string) string {
		t.Helper()
		var v string
		if err := p.QueryRow(t.Context(), "SELECT current_setting($1)", name).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	for name, p := range pools.All() {
		if got := show(p, "client_connection_check_interval"); got != "1s" {
			t.Errorf("%s: client_connection_check_interval %s, want 1s", name, got)
		}
		if got := show(p, "application_name"); got != "vehicle-data/"+name {
			t.Errorf("%s: application_name %s", name, got)
		}
	}
	for _, tc := range []struct {
		pool       *pgxpool.Pool
		name, want string
	}{
		{pools.Interactive, "statement_timeout", "1500ms"},
		{pools.Interactive, "lock_timeout", "700ms"},
		{pools.Interactive, "jit", "off"},
		{pools.Sorts, "statement_timeout", "1500ms"},
		{pools.Sorts, "jit", "off"},
		{pools.Export, "statement_timeout", "0"},
		{pools.Ingest, "statement_timeout", "0"},
		{pools.Ingest, "lock_timeout", "0"},
		{pools.Probe, "statement_timeout", "1s"},
	} {
		if got := show(tc.pool, tc.name); got != tc.want {
			t.Errorf("%s = %s, want %s", tc.name, got, tc.want)
		}
	}
	if n := pools.Export.Config().MaxConns; n != 1 {
		t.Errorf("export pool size %d", n)
	}
}
