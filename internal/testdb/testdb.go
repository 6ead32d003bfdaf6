// Package testdb gives each integration test a fresh, migrated PostgreSQL database of its own,
// cloned from a template migrated once per test binary, so that tests can run in parallel.
//
// The server is started on first use: the one at TEST_DATABASE_URL if set, else a
// testcontainers PostgreSQL container (image VEHICLE_DATA_TEST_PG_IMAGE, default
// postgres:16-alpine), else, when no container can be started (no Docker engine, image not
// available), an embedded server run from the local PostgreSQL binaries.
// VEHICLE_DATA_TEST_BACKEND=container|embedded forces one, without fallback. A missing
// database fails the tests; it never skips them.
//
// A package using testdb calls Main from its TestMain so the server is removed afterwards:
//
//	func TestMain(m *testing.M) { testdb.Main(m) }
package testdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vehicle-data/vehicle-data/internal/database"
)

// cleanupTimeout bounds each DROP DATABASE and the teardown.
const cleanupTimeout = time.Minute

// server is the state shared by the tests of one binary.
type server struct {
	backend  *backend
	admin    *pgxpool.Pool // on backend.url, for CREATE and DROP DATABASE
	prefix   string        // unique per binary, so binaries can share TEST_DATABASE_URL
	template string
	counter  atomic.Int64
}

var shared struct {
	once sync.Once
	srv  *server
	err  error
}

// Main runs the tests, then removes the server that they started (if any), and exits with
// the tests' code. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if err := teardown(); err != nil {
		fmt.Fprintf(os.Stderr, "testdb: teardown: %v\n", err)
	}
	os.Exit(code)
}

// New returns a pool on a fresh, fully migrated database of its own, dropped when the test
// ends.
func New(t testing.TB) *pgxpool.Pool {
	t.Helper()
	u := NewURL(t)
	pool, err := database.Open(t.Context(), u)
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	t.Cleanup(pool.Close) // runs before the DROP registered by NewURL
	return pool
}

// NewURL returns the URL of a fresh, fully migrated database of its own, for tests that open
// their own pool or start a server. The database is dropped, connections and all, when the
// test ends.
func NewURL(t testing.TB) string {
	t.Helper()
	srv := get(t)
	return srv.create(t, "TEMPLATE "+pgx.Identifier{srv.template}.Sanitize())
}

// NewUnmigratedURL returns the URL of a fresh database without any schema, for tests of the
// migrations themselves. It is dropped when the test ends.
func NewUnmigratedURL(t testing.TB) string {
	t.Helper()
	return get(t).create(t, "TEMPLATE template0")
}

func get(t testing.TB) *server {
	t.Helper()
	shared.once.Do(func() { shared.srv, shared.err = start(t) })
	if shared.err != nil {
		t.Fatalf("testdb: %v", shared.err)
	}
	return shared.srv
}

func start(t testing.TB) (*server, error) {
	logf := func(format string, args ...any) {
		t.Logf(format, args...)
		fmt.Fprintf(os.Stderr, format+"\n", args...)
	}
	ctx := context.WithoutCancel(t.Context()) // shared by later tests: outlives this one
	b, err := startBackend(ctx, logf)
	if err != nil {
		return nil, err
	}
	srv := &server{backend: b}
	ok := false
	defer func() {
		if !ok {
			_ = srv.close()
		}
	}()
	if srv.admin, err = database.Open(ctx, b.url); err != nil {
		return nil, fmt.Errorf("%s: %w", b.name, err)
	}

	suffix := make([]byte, 4)
	if _, err := rand.Read(suffix); err != nil {
		return nil, err
	}
	srv.prefix = "vdtest_" + hex.EncodeToString(suffix)
	srv.template = srv.prefix + "_template"
	migrating := time.Now()
	if err := srv.createTemplate(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w", b.name, err)
	}
	ok = true
	logf("testdb: using %s (server started in %v, template migrated in %v)", b.name,
		b.took.Round(time.Millisecond), time.Since(migrating).Round(time.Millisecond))
	return srv, nil
}

// createTemplate makes the database every test database is cloned from, fully migrated and
// closed to connections (a clone fails while anyone is connected to its template).
func (s *server) createTemplate(ctx context.Context) error {
	tmpl := pgx.Identifier{s.template}.Sanitize()
	if _, err := s.admin.Exec(ctx, "CREATE DATABASE "+tmpl); err != nil {
		return fmt.Errorf("create template database: %w", err)
	}
	u, err := withDatabase(s.backend.url, s.template)
	if err != nil {
		return err
	}
	pool, err := database.Open(ctx, u)
	if err != nil {
		return fmt.Errorf("template database: %w", err)
	}
	err = database.MigrateUp(ctx, pool)
	pool.Close()
	if err != nil {
		return fmt.Errorf("template database: %w", err)
	}
	if _, err := s.admin.Exec(ctx, "ALTER DATABASE "+tmpl+" WITH ALLOW_CONNECTIONS false"); err != nil {
		return fmt.Errorf("close template database: %w", err)
	}
	return nil
}

// create makes a database with the given CREATE DATABASE options, dropped in t.Cleanup.
func (s *server) create(t testing.TB, options string) string {
	t.Helper()
	name := fmt.Sprintf("%s_%d", s.prefix, s.counter.Add(1))
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := s.admin.Exec(t.Context(), "CREATE DATABASE "+ident+" "+options); err != nil {
		t.Fatalf("testdb: create database %s on %s: %v", name, s.backend.name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if _, err := s.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			t.Errorf("testdb: drop database %s: %v", name, err)
		}
	})
	u, err := withDatabase(s.backend.url, name)
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	t.Logf("testdb: database %s on %s", name, s.backend.name)
	return u
}

func teardown() error {
	if shared.srv == nil {
		return nil
	}
	return shared.srv.close()
}

func (s *server) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	var errs []error
	if s.admin != nil {
		if s.template != "" {
			// Matters on a shared TEST_DATABASE_URL server; the others are thrown away anyway.
			if _, err := s.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{s.template}.Sanitize()+" WITH (FORCE)"); err != nil {
				errs = append(errs, fmt.Errorf("drop template database: %w", err))
			}
		}
		s.admin.Close()
	}
	if err := s.backend.stop(ctx); err != nil {
		errs = append(errs, fmt.Errorf("stop %s: %w", s.backend.name, err))
	}
	return errors.Join(errs...)
}

// withDatabase points a connection string, URL or key=value form, at another database.
func withDatabase(conn, name string) (string, error) {
	if strings.HasPrefix(conn, "postgres://") || strings.HasPrefix(conn, "postgresql://") {
		u, err := url.Parse(conn)
		if err != nil {
			return "", fmt.Errorf("parse connection URL: %v", redacted(err))
		}
		u.Path, u.RawPath = "/"+name, ""
		return u.String(), nil
	}
	// In the key=value form the last occurrence of a keyword wins.
	return conn + " dbname=" + name, nil
}

// redacted drops the URL (and so any password) that url.Parse errors quote.
func redacted(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}
