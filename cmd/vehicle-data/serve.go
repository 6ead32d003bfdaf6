package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vehicle-data/vehicle-data/gen/ui"
	"github.com/vehicle-data/vehicle-data/internal/config"
	"github.com/vehicle-data/vehicle-data/internal/dashboard"
	"github.com/vehicle-data/vehicle-data/internal/database"
	"github.com/vehicle-data/vehicle-data/internal/docs"
	"github.com/vehicle-data/vehicle-data/internal/drain"
	"github.com/vehicle-data/vehicle-data/internal/ingest"
	"github.com/vehicle-data/vehicle-data/internal/metrics"
	"github.com/vehicle-data/vehicle-data/internal/pgembed"
	"github.com/vehicle-data/vehicle-data/internal/records"
	"github.com/vehicle-data/vehicle-data/internal/server"
)

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(server.LogHandler{Handler: slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})})
}

// openDatabase connects to cfg.DatabaseURL, or starts the embedded PostgreSQL when none is
// configured, and to the read standby at cfg.ReadDatabaseURL when set (Pools.Standby). The
// returned stop function closes the pools and stops what was started.
func openDatabase(ctx context.Context, cfg config.Config, logger *slog.Logger) (*database.Pools, func(), error) {
	url := cfg.DatabaseURL
	stopEmbedded := func() {}
	if url == "" {
		logger.Info("DATABASE_URL is not set: starting the embedded PostgreSQL", "data_dir", cfg.DataDir)
		// The embedded server must outlive request contexts, and stop only when we do.
		pg, err := pgembed.Start(context.WithoutCancel(ctx), pgembed.Options{
			DataDir: cfg.DataDir, FallbackRoot: cfg.DataDirFallback, Logger: logger})
		// A folder the operator named is refused, never replaced: say how to get out.
		if ue := (*pgembed.UnreachableError)(nil); errors.As(err, &ue) && cfg.DataDirFallback == "" {
			root := config.Default().DataDirFallback
			return nil, nil, fmt.Errorf("embedded PostgreSQL: %w, such as %s/postgres (--data-dir or DATA_DIR), "+
				"or unset both: only the default data folder moves by itself (to %s/<hash>/postgres)", err, root, root)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("embedded PostgreSQL: %w", err)
		}
		url = pg.URL()
		stopEmbedded = func() {
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := pg.Stop(sctx); err != nil {
				logger.Error("stopping the embedded PostgreSQL", "err", err)
			}
		}
	}
	l := cfg.Limits
	sizes := database.PoolSizes{
		Interactive: l.DBConns,
		Sorts:       l.DBSortConns,
		Export:      l.MaxExports,
		// Two connections per finalize, and one for the purge and the migrations.
		Ingest:           2*l.MaxFinalizes + 1,
		StatementTimeout: l.StatementTimeout,
		LockTimeout:      l.LockTimeout,
	}
	pools, err := database.OpenPools(ctx, url, sizes)
	if err != nil {
		stopEmbedded()
		return nil, nil, err
	}
	if cfg.ReadDatabaseURL != "" {
		// The same budgets as the primary's for the reads it takes over; a standby that is
		// down at start is no error: the reads go to the primary until it answers.
		if pools.Standby, err = database.OpenStandby(ctx, pools.Probe, cfg.ReadDatabaseURL, sizes, cfg.MaxReadLag, logger); err != nil {
			pools.Close()
			stopEmbedded()
			return nil, nil, err
		}
		logger.Info("read standby configured", "max_read_lag", cfg.MaxReadLag.String(), "usable", pools.Standby.Usable(),
			"detail", pools.Standby.Degraded())
	}
	return pools, func() { pools.Close(); stopEmbedded() }, nil
}

func serve(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	cfg, err := config.Load(args, getenv, stderr)
	if err != nil {
		return err
	}
	logger := newLogger(stderr, cfg.LogLevel)

	pools, closeDB, err := openDatabase(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer closeDB()
	if cfg.Migrate {
		if err := database.MigrateUp(ctx, pools.Ingest); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
	}

	dash, err := dashboard.New(ui.Dist())
	if err != nil {
		return err
	}
	m := metrics.New(pools.All())
	if st := pools.Standby; st != nil {
		m.AddReadStandby(func() (bool, time.Duration, bool) {
			s := st.State()
			return s.Usable, s.Lag, s.LagKnown
		})
	}
	ing := ingest.New(pools.Interactive, ingest.Options{
		MaxChunkBytes: cfg.MaxChunkBytes, Logger: logger, Metrics: m,
		FinalizePool: pools.Ingest, AcquireTimeout: cfg.Limits.AcquireTimeout,
		MaxUploadBytes: cfg.MaxUploadBytes, MaxPendingUploadBytes: cfg.MaxPendingUploadBytes,
	})
	// The optional index of db/optional, found once: after creating or dropping it, restart.
	shiftIndex, err := records.HasShiftStateIndex(ctx, pools.Interactive)
	if err != nil {
		logger.Warn("pages by shift_state will not read samples_shift_state_idx", "err", err)
	} else {
		logger.Info("optional indexes", "samples_shift_state_idx", shiftIndex)
	}
	var draining atomic.Bool
	handler := server.New(server.Options{
		Draining: draining.Load,
		Config:   cfg,
		Logger:   logger,
		Records: records.NewStore(pools.Interactive, records.StoreOptions{
			SortPool: pools.Sorts, ExportPool: pools.Export, AcquireTimeout: cfg.Limits.AcquireTimeout, Standby: pools.Standby,
			ShiftStateIndex: shiftIndex,
		}),
		Ingest:   ing,
		Ready:    database.NewReadiness(pools.Probe).Check,
		Degraded: pools.Standby.Degraded,
		Metrics:  m,
		Docs:     docs.Handler(),
		UI:       dash,
	})

	ln, err := drain.Listen(ctx, cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	fresh := newConnTracker()
	srv := &http.Server{
		Handler:           handler,
		ConnState:         fresh.track,
		ReadHeaderTimeout: 10 * time.Second,
		// Bodies are bounded per route; a chunk upload on a slow link takes a while.
		ReadTimeout: 5 * time.Minute,
		// Exports extend their own deadline as rows go out; this bounds everything else.
		WriteTimeout: 5 * time.Minute,
		IdleTimeout:  2 * time.Minute,
		ErrorLog:     slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}

	purgeCtx, stopPurge := context.WithCancel(ctx)
	defer stopPurge()
	go ing.RunPurger(purgeCtx, cfg.PurgeInterval, cfg.UploadMaxAge)
	go pools.Standby.Run(purgeCtx)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logger.Info("serving", "addr", ln.Addr().String(), "docs", "/docs", "spec", "/openapi.yaml")

	select {
	case err := <-errc:
		return fmt.Errorf("server: %w", err)
	case <-ctx.Done():
	}
	// Readiness red and Connection: close first, while still serving: a proxy's health check
	// and its kept-alive connections move to the other replicas before the listener closes.
	draining.Store(true)
	if cfg.DrainDelay > 0 {
		logger.Info("draining", "delay", cfg.DrainDelay.String())
		time.Sleep(cfg.DrainDelay)
	}
	// The listener closes before Shutdown begins, and connections already accepted get up to
	// a second to start their request: Shutdown drops a request it reads after it began
	// (net/http hangs up right after reading it), which would be the fate of a request a proxy
	// sent on a connection it opened just before the listener closed. A proxy cannot retry
	// such a POST on another replica. For the same reason the listener stops new handshakes
	// and lets the server accept what the kernel has queued before it closes (a close resets
	// queued connections, requests sent and all).
	if queued, err := drain.CloseListener(ln, time.Second); err != nil {
		logger.Warn("closing the listener", "err", err)
	} else {
		logger.Info("listener closed", "queued", queued)
	}
	<-errc // Serve has returned, so Shutdown has no listener left to close
	fresh.waitNone(time.Second)
	// Shutdown closes idle kept-alive connections at once, and a proxy may be sending on
	// one at that moment (an export that began before the drain keeps its connection alive
	// when it ends): the request is lost, and a POST cannot be retried elsewhere. Let the
	// peer close them first, as a proxy does after its upstream keepalive_timeout (which the
	// README asks to keep below the drain delay).
	fresh.waitNoIdle(max(cfg.DrainDelay, time.Second))
	logger.Info("shutting down", "grace", cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	logger.Info("stopped")
	return nil
}

// connTracker knows the connections accepted whose first request has not been read yet
// (http.StateNew) and those kept alive between requests (http.StateIdle), fed by
// http.Server.ConnState.
type connTracker struct {
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	idle  map[net.Conn]struct{}
}

func newConnTracker() *connTracker {
	return &connTracker{conns: map[net.Conn]struct{}{}, idle: map[net.Conn]struct{}{}}
}

func (t *connTracker) track(c net.Conn, state http.ConnState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if state == http.StateNew {
		t.conns[c] = struct{}{}
	} else {
		delete(t.conns, c) // active (its request is read), closed or hijacked
	}
	if state == http.StateIdle {
		t.idle[c] = struct{}{}
	} else {
		delete(t.idle, c)
	}
}

// waitNoIdle returns once no kept-alive connection is idle, or after limit.
func (t *connTracker) waitNoIdle(limit time.Duration) {
	const poll = 10 * time.Millisecond
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(poll) {
		t.mu.Lock()
		n := len(t.idle)
		t.mu.Unlock()
		if n == 0 {
			return
		}
	}
}

func (t *connTracker) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.conns)
}

// waitNone returns once no connection waits for its first request, or after limit.
func (t *connTracker) waitNone(limit time.Duration) {
	const poll = 10 * time.Millisecond
	for deadline := time.Now().Add(limit); t.count() > 0 && time.Now().Before(deadline); {
		time.Sleep(poll)
	}
	// net/http checks for a shutdown right after it reports the request read: let that pass.
	time.Sleep(poll)
}
