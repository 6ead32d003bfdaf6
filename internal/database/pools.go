package database

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vehicle-data/vehicle-data/internal/apperr"
)

// Pools are the connection budgets of the kinds of work. Each is its own pgxpool, so a kind
// that fills its budget (slow export clients, big finalizes) cannot take a connection that
// short work needs: short requests never queue behind long ones for a connection.
type Pools struct {
	// Interactive serves short requests: lists, retrieves, creates, chunks, upload status,
	// vehicles, series. Its sessions carry the statement and lock timeouts.
	Interactive *pgxpool.Pool
	// Sorts serves the list pages that no index or rollup serves (records' sortsAll): each
	// reads and sorts every matching row, for seconds at fleet scale, on connections of its
	// own, so that a few at once cannot take every connection the short requests need.
	Sorts *pgxpool.Pool
	// Export streams exports, one connection each.
	Export *pgxpool.Pool
	// Ingest runs finalizes (two connections each), the upload purge and migrations:
	// long statements, no statement timeout.
	Ingest *pgxpool.Pool
	// Probe answers /readyz on a connection of its own, so readiness never waits for
	// the others; a Standby's checks read the primary's WAL position on it too.
	Probe *pgxpool.Pool
	// Standby serves reads from a hot standby while it keeps up; nil: every read goes to
	// the primary. Set by the caller (OpenStandby), closed by Close.
	Standby *Standby
}

// PoolSizes sizes the pools and sets the interactive sessions' time limits.
type PoolSizes struct {
	Interactive, Sorts, Export, Ingest int
	StatementTimeout                   time.Duration // interactive only
	LockTimeout                        time.Duration // interactive only
}

// Session settings of every pool's connections. A server process that dies (kill -9, a
// crash, a lost host) leaves its backends running their statement until they notice: for a
// finalize that is minutes of an INSERT holding the upload's lock, and a retry would be told
// "another finalize is running" all that time. PostgreSQL 14+ checks the client socket every
// client_connection_check_interval while a statement runs and aborts it when the peer has
// closed; the keepalives find a peer that vanished without closing (a lost host) in about
// 5 + 2*2 s.
var sessionParams = map[string]string{
	"client_connection_check_interval": "1000", // ms
	"tcp_keepalives_idle":              "5",
	"tcp_keepalives_interval":          "2",
	"tcp_keepalives_count":             "2",
}

// OpenPools opens the four pools on url. Pool settings in the URL (pool_max_conns) are
// overridden by sizes; everything else in it applies to all four.
func OpenPools(ctx context.Context, url string, sizes PoolSizes) (*Pools, error) {
	if sizes.Interactive < 1 || sizes.Sorts < 1 || sizes.Export < 1 || sizes.Ingest < 2 {
		return nil, fmt.Errorf("open database: pool sizes must be >= 1 (ingest >= 2), got %+v", sizes)
	}
	open := func(name string, size int, params map[string]string) (*pgxpool.Pool, error) {
		return openPool(ctx, url, name, size, params, true)
	}
	p := &Pools{}
	var err error
	if p.Interactive, err = open("interactive", sizes.Interactive, interactiveParams(sizes)); err != nil {
		return nil, err
	}
	if p.Sorts, err = open("sorts", sizes.Sorts, interactiveParams(sizes)); err != nil {
		p.Close()
		return nil, err
	}
	if p.Export, err = open("export", sizes.Export, nil); err != nil {
		p.Close()
		return nil, err
	}
	if p.Ingest, err = open("ingest", sizes.Ingest, nil); err != nil {
		p.Close()
		return nil, err
	}
	if p.Probe, err = open("probe", 1, probeParams); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// A probe has a second to answer; its statements never need longer.
var probeParams = map[string]string{"statement_timeout": "1000"}

// interactiveParams are the session settings of short requests: their time limits, and no JIT.
// JIT compiles a plan whose estimated cost passes jit_above_cost, which a request's query does
// on a misestimate alone: a page by soc that read 3,683 rows in 8 ms spent 254 ms compiling
// (EXPLAIN ANALYZE at 10M rows, PostgreSQL 15's defaults). Exports turn it off per transaction.
func interactiveParams(sizes PoolSizes) map[string]string {
	params := map[string]string{"jit": "off"}
	if sizes.StatementTimeout > 0 {
		params["statement_timeout"] = strconv.FormatInt(sizes.StatementTimeout.Milliseconds(), 10)
	}
	if sizes.LockTimeout > 0 {
		params["lock_timeout"] = strconv.FormatInt(sizes.LockTimeout.Milliseconds(), 10)
	}
	return params
}

// openPool opens one pool of size connections named name (application_name), with the
// session settings of every pool and params. ping: connect once now, so that a wrong address
// fails at start; without it the pool connects on first use (a standby may be down at start).
func openPool(ctx context.Context, url, name string, size int, params map[string]string, ping bool) (*pgxpool.Pool, error) {
	configure := func(c *pgxpool.Config) {
		c.MaxConns = int32(size)
		c.ConnConfig.RuntimeParams["application_name"] = appName(c, name)
		for k, v := range sessionParams {
			c.ConnConfig.RuntimeParams[k] = v
		}
		for k, v := range params {
			c.ConnConfig.RuntimeParams[k] = v
		}
		if !ping && c.ConnConfig.ConnectTimeout == 0 {
			c.ConnConfig.ConnectTimeout = standbyConnectTimeout
		}
	}
	if ping {
		return OpenWith(ctx, url, configure)
	}
	pool, _, err := newPool(ctx, url, configure)
	return pool, err
}

// appName names the pool's sessions in pg_stat_activity ("vehicle-data/export"), keeping a
// name the URL chose as the prefix.
func appName(c *pgxpool.Config, pool string) string {
	base := c.ConnConfig.RuntimeParams["application_name"]
	if base == "" {
		base = "vehicle-data"
	}
	return base + "/" + pool
}

// Close closes every pool that was opened, the standby's too.
func (p *Pools) Close() {
	for _, pool := range []*pgxpool.Pool{p.Interactive, p.Sorts, p.Export, p.Ingest, p.Probe} {
		if pool != nil {
			pool.Close()
		}
	}
	p.Standby.Close()
}

// All returns the pools by name, for metrics.
func (p *Pools) All() map[string]*pgxpool.Pool {
	all := map[string]*pgxpool.Pool{"interactive": p.Interactive, "sorts": p.Sorts, "export": p.Export, "ingest": p.Ingest, "probe": p.Probe}
	if p.Standby != nil {
		all["standby-interactive"], all["standby-sorts"], all["standby-export"], all["standby-probe"] = p.Standby.Interactive, p.Standby.Sorts, p.Standby.Export, p.Standby.probe
	}
	return all
}

// SortsSetting is the setting that sizes Sorts, which a refusal names.
const SortsSetting = "db-sort-conns"

// readyTimeout keeps /readyz under a second in every state: a database that does not answer
// within it is not ready.
const readyTimeout = 900 * time.Millisecond

// Readiness checks that the database answers and is migrated, on the probe pool.
type Readiness struct {
	pool     *pgxpool.Pool
	migrated atomic.Bool // once seen fully migrated, a ping suffices: migrations only move forward
}

// NewReadiness returns the readiness check over pool (Pools.Probe).
func NewReadiness(pool *pgxpool.Pool) *Readiness { return &Readiness{pool: pool} }

// Check returns nil when the database answers within readyTimeout and its schema is migrated.
func (r *Readiness) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	if r.migrated.Load() {
		if err := r.pool.Ping(ctx); err != nil {
			return fmt.Errorf("database unreachable: %w", err)
		}
		return nil
	}
	if err := CheckReady(ctx, r.pool); err != nil {
		return err
	}
	r.migrated.Store(true)
	return nil
}

// Acquire takes a connection from pool, waiting at most wait for one (zero: as long as ctx
// allows). Past it the answer is a 503 naming setting, the limit that was full: short
// requests never queue without bound behind each other.
func Acquire(ctx context.Context, pool *pgxpool.Pool, wait time.Duration, setting string) (*pgxpool.Conn, error) {
	work := "short requests"
	if setting == SortsSetting {
		work = "list pages that sort every matching row"
	}
	if wait <= 0 {
		return pool.Acquire(ctx)
	}
	actx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	conn, err := pool.Acquire(actx)
	if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		return nil, apperr.Busy(time.Second, "all %d database connections for %s (%s) stayed busy for %s; retry in a second",
			pool.Config().MaxConns, work, setting, wait)
	}
	return conn, err
}
