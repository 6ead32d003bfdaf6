package database

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/vehicle-data/vehicle-data/db/migrations"
)

// ErrNotMigrated is wrapped by CheckReady when the schema lags behind the binary's migrations.
var ErrNotMigrated = errors.New("database has pending migrations")

// withProvider runs fn with a goose provider over pool. The *sql.DB borrows connections from
// pool, so closing it leaves pool open.
func withProvider(pool *pgxpool.Pool, fn func(*goose.Provider) error) error {
	if pool == nil {
		return errors.New("migrate: nil pool")
	}
	// Several replicas may start at once: the session lock makes one of them migrate while the
	// others wait. Retrying every second (up to 5 minutes) keeps the wait short.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	if err != nil {
		return fmt.Errorf("migrate: session locker: %w", err)
	}
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS,
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true), // only the embedded SQL files, no init()-registered Go migrations
	)
	if err != nil {
		return fmt.Errorf("migrate: load migrations: %w", err)
	}
	return fn(p)
}

// MigrateUp applies every pending migration.
func MigrateUp(ctx context.Context, pool *pgxpool.Pool) error {
	return withProvider(pool, func(p *goose.Provider) error {
		if _, err := p.Up(ctx); err != nil {
			return fmt.Errorf("migrate up: %w", err)
		}
		return nil
	})
}

// MigrateDown rolls back the most recently applied migration.
func MigrateDown(ctx context.Context, pool *pgxpool.Pool) error {
	return withProvider(pool, func(p *goose.Provider) error {
		if _, err := p.Down(ctx); err != nil {
			if errors.Is(err, goose.ErrNoNextVersion) {
				return errors.New("migrate down: no applied migration to roll back")
			}
			return fmt.Errorf("migrate down: %w", err)
		}
		return nil
	})
}

// MigrateStatus writes one line per known migration: its version, file, state and when it was
// applied.
func MigrateStatus(ctx context.Context, pool *pgxpool.Pool, w io.Writer) error {
	return withProvider(pool, func(p *goose.Provider) error {
		statuses, err := p.Status(ctx)
		if err != nil {
			return fmt.Errorf("migrate status: %w", err)
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "VERSION\tMIGRATION\tSTATE\tAPPLIED AT")
		for _, s := range statuses {
			applied := "-"
			if s.State == goose.StateApplied {
				applied = s.AppliedAt.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", s.Source.Version, path.Base(s.Source.Path), s.State, applied)
		}
		if err := tw.Flush(); err != nil {
			return fmt.Errorf("migrate status: write: %w", err)
		}
		return nil
	})
}

// Pending reports whether some embedded migration is not applied yet. It never writes to the
// database (goose itself would create its version table), so it is safe for probes.
func Pending(ctx context.Context, pool *pgxpool.Pool) (bool, error) {
	if pool == nil {
		return false, errors.New("pending migrations: nil pool")
	}
	var exists bool
	// The same test goose uses, so both agree on where the version table lives.
	err := pool.QueryRow(ctx,
		`SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = $1)`,
		goose.DefaultTablename).Scan(&exists)
	if err != nil {
		return false, fmt.Errorf("pending migrations: %w", err)
	}
	if !exists {
		// Nothing applied yet; migrations.FS always holds at least one migration.
		return true, nil
	}
	var pending bool
	err = withProvider(pool, func(p *goose.Provider) error {
		var err error
		pending, err = p.HasPending(ctx)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("pending migrations: %w", err)
	}
	return pending, nil
}

// CheckReady returns nil when the database answers and its schema is fully migrated, for
// /readyz. A lagging schema yields an error wrapping ErrNotMigrated.
func CheckReady(ctx context.Context, pool *pgxpool.Pool) error {
	if pool == nil {
		return errors.New("database not configured")
	}
	if err := pool.Ping(ctx); err != nil {
		return fmt.Errorf("database unreachable: %w", err)
	}
	pending, err := Pending(ctx, pool)
	if err != nil {
		return err
	}
	if pending {
		return fmt.Errorf("%w: run `vehicle-data migrate up`", ErrNotMigrated)
	}
	return nil
}
