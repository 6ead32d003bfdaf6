package bench

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vehicle-data/vehicle-data/internal/pgembed"
)

// postgres is the one PostgreSQL server every step of a benchmark run uses, so that
// the service and psql are measured on the same footing.
type postgres struct {
	embedded *pgembed.Server // nil when the user gave a URL
	adminURL string          // a database to run CREATE/DROP DATABASE from
	prefix   string          // of every database this run creates
	created  []string        // databases to drop at the end
	noCheckp bool            // CHECKPOINT was refused (not a superuser): do not ask again
}

// startPostgres starts an embedded server with its cluster in dir, durable (fsync on) as
// in production, or, when databaseURL is set, uses that server.
func startPostgres(ctx context.Context, databaseURL, dir string) (*postgres, error) {
	if databaseURL != "" {
		if _, err := databaseURLFor(databaseURL, "x"); err != nil {
			return nil, err
		}
		// Several runs may share one server: the process id keeps their databases apart.
		return &postgres{adminURL: databaseURL, prefix: fmt.Sprintf("vdbench_%d_", os.Getpid())}, nil
	}
	// The server outlives every step; stop() ends it, not a cancelled step.
	pg, err := pgembed.Start(context.WithoutCancel(ctx), pgembed.Options{DataDir: filepath.Join(dir, "postgres")})
	if err != nil {
		return nil, err
	}
	return &postgres{embedded: pg, adminURL: pg.URL(), prefix: "bench_"}, nil
}

// databaseURLFor is base with its database replaced by name.
func databaseURLFor(base, name string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("database URL must be a postgres:// URL, got %q", redact(base))
	}
	u.Path = "/" + name
	u.RawPath = ""
	return u.String(), nil
}

// redact hides a URL's password for messages.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// createDatabase makes an empty database named prefix+name and returns its URL. An
// earlier, kept run's database of that name is dropped first.
func (p *postgres) createDatabase(ctx context.Context, name string) (string, error) {
	full := p.prefix + name
	ident := pgx.Identifier{full}.Sanitize()
	err := p.withConn(ctx, p.adminURL, func(conn *pgx.Conn) error {
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			return err
		}
		_, err := conn.Exec(ctx, "CREATE DATABASE "+ident)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("create database %s: %w", full, err)
	}
	p.created = append(p.created, full)
	return databaseURLFor(p.adminURL, full)
}

// exec runs statements in the database at dbURL.
func (p *postgres) exec(ctx context.Context, dbURL string, stmts ...string) error {
	return p.withConn(ctx, dbURL, func(conn *pgx.Conn) error {
		for _, s := range stmts {
			if _, err := conn.Exec(ctx, s); err != nil {
				return fmt.Errorf("%s: %w", firstWords(s), err)
			}
		}
		return nil
	})
}

// checkpoint flushes dirty buffers so that no timed step pays for the previous one's
// writes. Only a superuser (or pg_checkpoint) may: elsewhere it is skipped.
func (p *postgres) checkpoint(ctx context.Context) error {
	if p.noCheckp {
		return nil
	}
	err := p.exec(ctx, p.adminURL, "CHECKPOINT")
	if err != nil && strings.Contains(err.Error(), "42501") { // insufficient_privilege
		p.noCheckp = true
		return nil
	}
	return err
}

// settings describes the server for the report.
func (p *postgres) settings(ctx context.Context) (string, error) {
	names := []string{"server_version", "fsync", "synchronous_commit", "shared_buffers", "max_wal_size"}
	var parts []string
	err := p.withConn(ctx, p.adminURL, func(conn *pgx.Conn) error {
		for _, n := range names {
			var v string
			if err := conn.QueryRow(ctx, "SELECT current_setting($1)", n).Scan(&v); err != nil {
				return err
			}
			parts = append(parts, n+"="+v)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("read server settings: %w", err)
	}
	where := "given by --database-url"
	if p.embedded != nil {
		where = "embedded"
	}
	return fmt.Sprintf("PostgreSQL (%s) %s", where, strings.Join(parts, " ")), nil
}

func (p *postgres) withConn(ctx context.Context, dbURL string, f func(*pgx.Conn) error) error {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return f(conn)
}

// stop drops the databases this run made (unless keep) and stops an embedded server.
func (p *postgres) stop(keep bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var errs []error
	if !keep && p.embedded == nil {
		for _, name := range p.created {
			if err := p.exec(ctx, p.adminURL, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if p.embedded != nil {
		errs = append(errs, p.embedded.Stop(ctx))
	}
	return errors.Join(errs...)
}

func firstWords(s string) string {
	f := strings.Fields(s)
	return strings.Join(f[:min(len(f), 3)], " ")
}
