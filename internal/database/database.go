// Package database opens the PostgreSQL connection pool and applies the embedded goose
// migrations. It is the only package that knows how the schema is versioned.
package database

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pingTimeout bounds the first round trip so that a wrong address fails fast instead of
// hanging until the caller's deadline.
const pingTimeout = 10 * time.Second

// Open connects to the database at url (a postgres:// URL or a key=value DSN) and checks that
// it answers. Pool settings may be tuned in the URL itself (pool_max_conns=..., see pgxpool).
func Open(ctx context.Context, url string) (*pgxpool.Pool, error) {
	return OpenWith(ctx, url, nil)
}

// OpenWith is Open with a last say on the pool's configuration (tools: a tracer, a size).
func OpenWith(ctx context.Context, url string, configure func(*pgxpool.Config)) (*pgxpool.Pool, error) {
	pool, cfg, err := newPool(ctx, url, configure)
	if err != nil {
		return nil, err
	}
	pingCtx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open database: connect to %s:%d/%s: %w",
			cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, err)
	}
	return pool, nil
}

// newPool is OpenWith without the first round trip: the pool connects on first use.
func newPool(ctx context.Context, url string, configure func(*pgxpool.Config)) (*pgxpool.Pool, *pgxpool.Config, error) {
	if url == "" {
		return nil, nil, errors.New("open database: empty connection URL")
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx redacts the password in its parse errors.
		return nil, nil, fmt.Errorf("open database: %w", err)
	}
	// Names our sessions in pg_stat_activity unless the URL already chose a name.
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "vehicle-data"
	}
	// The list, count and series queries take their shape from the request and are prepared
	// once per connection (pgx's statement cache); after five runs PostgreSQL may switch such a
	// statement to a generic plan, chosen without the values, and for a time range that plan
	// can be a thousand times slower than the custom one (seconds instead of milliseconds,
	// measured at 10M rows). Planning costs well under a millisecond here: always plan with
	// the values.
	if _, ok := cfg.ConnConfig.RuntimeParams["plan_cache_mode"]; !ok {
		cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
	}
	// A cancelled request (a client that went away mid-export or mid-finalize, a shutdown) asks
	// PostgreSQL to stop the statement, instead of pgx's default of closing the socket, which
	// leaves the statement running server-side, still holding its locks, until it notices.
	// This is the service's only cancellation path, and enough for every caller: pgx sends the
	// cancel request, waits for it (and a margin against it hitting the next statement) before
	// the connection is used again, and drops the connection only when the server has not
	// answered within DeadlineDelay. A finalize's COPY or INSERT thus ends at once and releases
	// the upload's lock; ingest, which once did the same by hand, relies on this.
	cfg.ConnConfig.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, CancelRequestDelay: 0, DeadlineDelay: 5 * time.Second}
	}
	if configure != nil {
		configure(cfg)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("open database: %w", err)
	}
	return pool, cfg, nil
}
