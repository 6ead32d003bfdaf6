// Package config is the service's one Config, loaded from flags and environment variables in
// one place. A flag wins over its environment variable, which wins over the default.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Config is everything `vehicle-data serve` can be told.
type Config struct {
	Addr        string
	DatabaseURL string // empty: start the embedded PostgreSQL
	// ReadDatabaseURL is a hot standby of the primary that serves the reads while it keeps
	// up (see database.Standby); empty: every read goes to the primary.
	ReadDatabaseURL string
	// MaxReadLag is how far behind the primary the standby may be and still serve reads.
	MaxReadLag      time.Duration
	DataDir         string // embedded PostgreSQL's data folder
	DataDirFallback string // where the default DataDir moves when the server's OS user cannot reach it; empty once DataDir is set
	Migrate         bool   // migrate on start
	MaxChunkBytes   int64
	UploadMaxAge    time.Duration
	PurgeInterval   time.Duration
	XLSXRowLimit    int64
	APITokens       []string
	AuthReads       bool
	CORSOrigins     []string
	ShutdownTimeout time.Duration
	DrainDelay      time.Duration // on SIGTERM: readiness red and Connection: close for this long before the listener closes
	LogLevel        string

	Limits Limits

	// Quotas on unfinalized uploads: a chunk that would take one upload past MaxUploadBytes
	// is a 413, one that would take all of them together past MaxPendingUploadBytes a 507.
	MaxUploadBytes        int64
	MaxPendingUploadBytes int64
}

// Limits keep short work (lists, retrieves, creates, chunks, status, vehicles, series, probes)
// answering while long work (exports, finalizes, XLSX workbooks) runs, however slowly its
// clients read: each kind has its own database connections and a cap on how many run at
// once, and a request over a cap gets a fast 503 with Retry-After instead of a queue.
// The defaults suit a 2-core machine with PostgreSQL on it: see Default.
type Limits struct {
	DBConns            int           // interactive connections (short work); its requests queue up to AcquireTimeout
	DBSortConns        int           // connections for list pages that sort every matching row (no index serves them)
	AcquireTimeout     time.Duration // how long short work may wait for a connection before a 503
	StatementTimeout   time.Duration // longest interactive query; past it, a 503
	LockTimeout        time.Duration // longest wait of a short request for rows a finalize holds; past it, a 503
	MaxExports         int           // concurrent exports of every format, one connection each
	MaxXLSXExports     int           // concurrent XLSX workbooks (of MaxExports), the memory-heavy format
	MaxFinalizes       int           // concurrent finalizes, two connections each
	ExportStall        time.Duration // an export whose client accepts no byte for this long is dropped
	ChunkBytesInFlight int64         // chunk bytes being received and stored at once (memory)
}

// MaxChunkBytesLimit is the largest MaxChunkBytes that can work: a chunk is one bytea value,
// and PostgreSQL refuses values of 1 GiB and more.
const MaxChunkBytesLimit int64 = 512 << 20

// defaultDBConns is the default number of interactive connections for a process that may
// use cores cores: twice as many, at least four. A core runs one query at a time, so more
// connections than queries the cores can run only share them among more queries, each slower:
// the slowest of the dashboard's pages (15 ms alone) took four times as long with eight at
// once on two cores. Twice the cores keeps every core busy while some connections wait on the
// network or on Go. The 10M-row list mix at 8 clients on 2 cores, one run each, alone
// (README, "Load, limits and faults"): p99 63.1 ms with 8 connections, 36.8 ms with 4, for
// the same share of pgbench's rate. The cores that count are PostgreSQL's: with the database
// on a box of its own, or several replicas on one database, set --db-conns from that box's.
func defaultDBConns(cores int) int { return max(4, 2*cores) }

// Default returns the configuration used when nothing is set. It is the one place of every
// default: the packages that take these values (ingest, pgembed, server) have none of their own.
func Default() Config {
	return Config{
		Addr:            ":8080",
		DataDir:         ".data/postgres",
		DataDirFallback: "/var/lib/vehicle-data",
		Migrate:         true,
		// A second: a person going from a create or an upload to the list takes longer, and on
		// loopback the standby replays a create within 2 ms; it falls further behind only while
		// it replays a big finalize (3.6 s at most for 200,000 rows), when reads are better on
		// the primary (README, "Reads on a standby"). Clients that must see their own write at
		// once send X-Min-LSN.
		MaxReadLag:      time.Second,
		MaxChunkBytes:   16 << 20,
		UploadMaxAge:    24 * time.Hour,
		PurgeInterval:   10 * time.Minute,
		XLSXRowLimit:    1_048_575,
		ShutdownTimeout: 30 * time.Second,
		LogLevel:        "info",
		Limits: Limits{
			DBConns: defaultDBConns(runtime.GOMAXPROCS(0)),
			// A page no index serves sorts every matching row, for seconds at 10M rows: two
			// at once are most of two cores, and the short requests keep their own.
			DBSortConns: 2,
			// The 10M-row list mix at 32 clients waits at most a few hundred ms for a
			// connection; a second means "overloaded", not "busy".
			AcquireTimeout: time.Second,
			// The slowest legitimate interactive query at 10M rows (an ordering no index
			// serves, deep page) takes about 5 s here; three times that is a runaway.
			StatementTimeout: 15 * time.Second,
			// A chunk or a create that touches rows a finalize is writing would wait for
			// the whole finalize; two seconds, then a 503 the client retries.
			LockTimeout: 2 * time.Second,
			// An export streams at the client's pace and holds one connection meanwhile;
			// four at once use up to two cores at full speed, and leave short work its own.
			MaxExports: 4,
			// A 1M-row workbook peaks at about 170 MiB (measured); two keep the process
			// far from the machine's memory whatever arrives.
			MaxXLSXExports: 2,
			// A finalize keeps one core busy for its whole file; two at once fill both.
			MaxFinalizes: 2,
			// Long enough for a client on a congested link, short enough that a stalled
			// one frees its connection soon.
			ExportStall: 30 * time.Second,
			// 64 MiB: four chunks of the 16 MiB maximum, or 64 of the dashboard's 1 MiB.
			ChunkBytesInFlight: 64 << 20,
		},

		// 2 GiB is 50 times the 1,000,000-row file of make bench (42 MiB), over a year of one
		// vehicle at 1 Hz; 8 GiB is four such uploads at once and bounds what abandoned
		// uploads (stored uncompressed until the purge) can take of the database's disk.
		MaxUploadBytes:        2 << 30,
		MaxPendingUploadBytes: 8 << 30,
	}
}

// Load parses args (without the command name) over the environment read through getenv.
func Load(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	c := Default()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)

	var (
		tokens, tokensFile, origins string
		errs                        []error
	)
	env := func(name string, set func(string) error) {
		if v := getenv(name); v != "" {
			if err := set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
			}
		}
	}
	setStr := func(p *string) func(string) error { return func(v string) error { *p = v; return nil } }
	setBool := func(p *bool) func(string) error {
		return func(v string) error { b, err := strconv.ParseBool(v); *p = b; return err }
	}
	setDur := func(p *time.Duration) func(string) error {
		return func(v string) error { d, err := time.ParseDuration(v); *p = d; return err }
	}
	setInt := func(p *int64) func(string) error {
		return func(v string) error { n, err := parseSize(v); *p = n; return err }
	}

	env("ADDR", setStr(&c.Addr))
	env("DATABASE_URL", setStr(&c.DatabaseURL))
	env("READ_DATABASE_URL", setStr(&c.ReadDatabaseURL))
	env("MAX_READ_LAG", setDur(&c.MaxReadLag))
	env("DATA_DIR", setStr(&c.DataDir))
	env("MIGRATE", setBool(&c.Migrate))
	env("MAX_CHUNK_BYTES", setInt(&c.MaxChunkBytes))
	env("UPLOAD_MAX_AGE", setDur(&c.UploadMaxAge))
	env("UPLOAD_PURGE_INTERVAL", setDur(&c.PurgeInterval))
	env("XLSX_ROW_LIMIT", setInt(&c.XLSXRowLimit))
	env("API_TOKENS", setStr(&tokens))
	env("API_TOKENS_FILE", setStr(&tokensFile))
	env("AUTH_READS", setBool(&c.AuthReads))
	env("CORS_ORIGINS", setStr(&origins))
	env("SHUTDOWN_TIMEOUT", setDur(&c.ShutdownTimeout))
	env("DRAIN_DELAY", setDur(&c.DrainDelay))
	env("LOG_LEVEL", setStr(&c.LogLevel))
	l := &c.Limits
	setN := func(p *int) func(string) error {
		return func(v string) error { n, err := strconv.Atoi(strings.TrimSpace(v)); *p = n; return err }
	}
	env("DB_CONNS", setN(&l.DBConns))
	env("DB_SORT_CONNS", setN(&l.DBSortConns))
	env("ACQUIRE_TIMEOUT", setDur(&l.AcquireTimeout))
	env("STATEMENT_TIMEOUT", setDur(&l.StatementTimeout))
	env("LOCK_TIMEOUT", setDur(&l.LockTimeout))
	env("MAX_EXPORTS", setN(&l.MaxExports))
	env("MAX_XLSX_EXPORTS", setN(&l.MaxXLSXExports))
	env("MAX_FINALIZES", setN(&l.MaxFinalizes))
	env("EXPORT_STALL_TIMEOUT", setDur(&l.ExportStall))
	env("CHUNK_BYTES_IN_FLIGHT", setInt(&l.ChunkBytesInFlight))

	env("MAX_UPLOAD_BYTES", setInt(&c.MaxUploadBytes))
	env("MAX_PENDING_UPLOAD_BYTES", setInt(&c.MaxPendingUploadBytes))
	if err := errors.Join(errs...); err != nil {
		return c, err
	}

	fs.StringVar(&c.Addr, "addr", c.Addr, "listen address (env ADDR)")
	fs.StringVar(&c.DatabaseURL, "database-url", c.DatabaseURL, "PostgreSQL URL; empty starts an embedded PostgreSQL (env DATABASE_URL)")
	fs.StringVar(&c.ReadDatabaseURL, "read-database-url", c.ReadDatabaseURL, "a hot standby of the primary for lists, retrieves, vehicles, series and exports; "+
		"empty: every read on the primary (env READ_DATABASE_URL)")
	fs.DurationVar(&c.MaxReadLag, "max-read-lag", c.MaxReadLag, "reads go to the primary while the standby is further behind than this (env MAX_READ_LAG)")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "data folder of the embedded PostgreSQL (env DATA_DIR); "+
		"run as root, a folder the postgres user cannot reach is refused when set, while the unset default "+
		"moves to "+c.DataDirFallback+"/<hash of its path>/postgres")
	fs.BoolVar(&c.Migrate, "migrate", c.Migrate, "apply pending migrations on start (env MIGRATE)")
	fs.Func("max-chunk-bytes", "largest upload chunk, e.g. 16MiB (env MAX_CHUNK_BYTES)", setInt(&c.MaxChunkBytes))
	fs.DurationVar(&c.UploadMaxAge, "upload-max-age", c.UploadMaxAge, "remove uploads not finalized after this long (env UPLOAD_MAX_AGE)")
	fs.DurationVar(&c.PurgeInterval, "upload-purge-interval", c.PurgeInterval, "how often to look for stale uploads (env UPLOAD_PURGE_INTERVAL)")
	fs.Func("xlsx-row-limit", "largest XLSX export in rows (env XLSX_ROW_LIMIT)", setInt(&c.XLSXRowLimit))
	fs.StringVar(&tokens, "api-tokens", tokens, "comma-separated bearer tokens for writes (env API_TOKENS)")
	fs.StringVar(&tokensFile, "api-tokens-file", tokensFile, "file with one bearer token per line (env API_TOKENS_FILE)")
	fs.BoolVar(&c.AuthReads, "auth-reads", c.AuthReads, "require a token for reads too (env AUTH_READS)")
	fs.StringVar(&origins, "cors-origins", origins, "comma-separated allowed CORS origins (env CORS_ORIGINS)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "grace period for in-flight requests on shutdown (env SHUTDOWN_TIMEOUT)")
	fs.DurationVar(&c.DrainDelay, "drain-delay", c.DrainDelay, "on shutdown, answer /readyz 503 and close kept-alive connections for this long before the listener closes; behind a load balancer, its health-check interval (env DRAIN_DELAY)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error (env LOG_LEVEL)")
	fs.IntVar(&l.DBConns, "db-conns", l.DBConns, "database connections for short requests: lists, retrieves, creates, chunks, series; default twice the cores, at least 4 (env DB_CONNS)")
	fs.IntVar(&l.DBSortConns, "db-sort-conns", l.DBSortConns, "database connections for list pages no index serves, which sort every matching row (env DB_SORT_CONNS)")
	fs.DurationVar(&l.AcquireTimeout, "acquire-timeout", l.AcquireTimeout, "how long a short request may wait for a connection before a 503 (env ACQUIRE_TIMEOUT)")
	fs.DurationVar(&l.StatementTimeout, "statement-timeout", l.StatementTimeout, "longest query of a short request; past it, a 503 (env STATEMENT_TIMEOUT)")
	fs.DurationVar(&l.LockTimeout, "lock-timeout", l.LockTimeout, "longest wait of a short request for rows a finalize is writing; past it, a 503 (env LOCK_TIMEOUT)")
	fs.IntVar(&l.MaxExports, "max-exports", l.MaxExports, "concurrent exports of any format, one connection each (env MAX_EXPORTS)")
	fs.IntVar(&l.MaxXLSXExports, "max-xlsx-exports", l.MaxXLSXExports, "concurrent XLSX exports, built in memory (env MAX_XLSX_EXPORTS)")
	fs.IntVar(&l.MaxFinalizes, "max-finalizes", l.MaxFinalizes, "concurrent finalizes, two connections each (env MAX_FINALIZES)")
	fs.DurationVar(&l.ExportStall, "export-stall-timeout", l.ExportStall, "drop an export whose client accepts nothing for this long (env EXPORT_STALL_TIMEOUT)")
	fs.Func("chunk-bytes-in-flight", "chunk bytes received at once, e.g. 64MiB (env CHUNK_BYTES_IN_FLIGHT)", setInt(&l.ChunkBytesInFlight))

	fs.Func("max-upload-bytes", "most bytes one unfinalized upload may hold, e.g. 2GiB (env MAX_UPLOAD_BYTES)", setInt(&c.MaxUploadBytes))
	fs.Func("max-pending-upload-bytes", "most bytes all unfinalized uploads together may hold, e.g. 8GiB (env MAX_PENDING_UPLOAD_BYTES)", setInt(&c.MaxPendingUploadBytes))
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	// A folder the operator named is theirs to fix; only the default may move.
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "data-dir" {
			c.DataDirFallback = ""
		}
	})
	if getenv("DATA_DIR") != "" {
		c.DataDirFallback = ""
	}

	c.APITokens = splitList(tokens)
	if tokensFile != "" {
		b, err := os.ReadFile(tokensFile)
		if err != nil {
			return c, fmt.Errorf("api tokens file: %w", err)
		}
		c.APITokens = append(c.APITokens, splitList(strings.ReplaceAll(string(b), "\n", ","))...)
	}
	c.CORSOrigins = splitList(origins)
	return c, c.Validate()
}

// Validate reports settings that cannot work.
func (c Config) Validate() error {
	var errs []error
	if c.MaxChunkBytes < 1 || c.MaxChunkBytes > MaxChunkBytesLimit {
		errs = append(errs, fmt.Errorf("max chunk bytes must be between 1 and %d", MaxChunkBytesLimit))
	}
	if c.XLSXRowLimit < 1 {
		errs = append(errs, errors.New("xlsx row limit must be >= 1 (it bounds an XLSX export's memory; CSV, JSON and NDJSON have no limit)"))
	}
	if c.DrainDelay < 0 {
		errs = append(errs, errors.New("drain delay must be >= 0"))
	}
	// The standby is checked every max-read-lag/2, at least 50 ms apart: below 100 ms, a
	// standby that keeps up would count as behind whenever the primary writes.
	if c.MaxReadLag < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("max-read-lag must be at least 100ms (got %s)", c.MaxReadLag))
	}
	if c.UploadMaxAge <= 0 || c.PurgeInterval <= 0 {
		errs = append(errs, errors.New("upload max age and purge interval must be > 0"))
	}
	errs = append(errs, c.Limits.validate(c.MaxChunkBytes))
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log level %q: want debug, info, warn or error", c.LogLevel))
	}

	if c.MaxUploadBytes < c.MaxChunkBytes {
		errs = append(errs, fmt.Errorf("max upload bytes (%d) must be >= max chunk bytes (%d): an upload must hold at least one chunk", c.MaxUploadBytes, c.MaxChunkBytes))
	}
	if c.MaxPendingUploadBytes < c.MaxUploadBytes {
		errs = append(errs, fmt.Errorf("max pending upload bytes (%d) must be >= max upload bytes (%d): all uploads together must hold at least one", c.MaxPendingUploadBytes, c.MaxUploadBytes))
	}
	return errors.Join(errs...)
}

func (l Limits) validate(maxChunk int64) error {
	var errs []error
	pos := func(name string, n int) {
		if n < 1 {
			errs = append(errs, fmt.Errorf("%s must be >= 1 (got %d)", name, n))
		}
	}
	pos("db-conns", l.DBConns)
	pos("db-sort-conns", l.DBSortConns)
	pos("max-exports", l.MaxExports)
	pos("max-xlsx-exports", l.MaxXLSXExports)
	pos("max-finalizes", l.MaxFinalizes)
	if l.MaxXLSXExports > l.MaxExports {
		errs = append(errs, fmt.Errorf("max-xlsx-exports (%d) must not exceed max-exports (%d): an XLSX export is an export", l.MaxXLSXExports, l.MaxExports))
	}
	if l.AcquireTimeout <= 0 || l.StatementTimeout <= 0 || l.LockTimeout <= 0 || l.ExportStall <= 0 {
		errs = append(errs, errors.New("acquire-timeout, statement-timeout, lock-timeout and export-stall-timeout must be > 0"))
	}
	if l.ChunkBytesInFlight < maxChunk {
		errs = append(errs, fmt.Errorf("chunk-bytes-in-flight (%d) must be at least max-chunk-bytes (%d), or no chunk of the maximum size could ever be taken", l.ChunkBytesInFlight, maxChunk))
	}
	return errors.Join(errs...)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" && !strings.HasPrefix(p, "#") {
			out = append(out, p)
		}
	}
	return out
}

// parseSize reads a byte count or row count: 1048576, 16MiB, 1MB, 512KiB.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1000}, {"MB", 1000_000}, {"GB", 1000_000_000}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size (e.g. 16MiB or 1048576)", s)
	}
	return n * mult, nil
}

// ParseSize is parseSize for other commands' flags (the uploader's --chunk-size).
func ParseSize(s string) (int64, error) { return parseSize(s) }
