// Package config is the service's one Config, loaded from flags and environment variables in
// one place. A flag wins over its environment variable, which wins over the default.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is everything `vehicle-data serve` can be told.
type Config struct {
	Addr            string
	DatabaseURL     string // empty: start the embedded PostgreSQL
	DataDir         string // embedded PostgreSQL's data folder
	Migrate         bool   // migrate on start
	MaxChunkBytes   int64
	UploadMaxAge    time.Duration
	PurgeInterval   time.Duration
	XLSXRowLimit    int64
	APITokens       []string
	AuthReads       bool
	CORSOrigins     []string
	ShutdownTimeout time.Duration
	LogLevel        string

	// Quotas on unfinalized uploads: a chunk that would take one upload past MaxUploadBytes
	// is a 413, one that would take all of them together past MaxPendingUploadBytes a 507.
	MaxUploadBytes        int64
	MaxPendingUploadBytes int64
}

// MaxChunkBytesLimit is the largest MaxChunkBytes that can work: a chunk is one bytea value,
// and PostgreSQL refuses values of 1 GiB and more.
const MaxChunkBytesLimit int64 = 512 << 20

// Default returns the configuration used when nothing is set. It is the one place of every
// default: the packages that take these values (ingest, pgembed, server) have none of their own.
func Default() Config {
	return Config{
		Addr:            ":8080",
		DataDir:         ".data/postgres",
		Migrate:         true,
		MaxChunkBytes:   16 << 20,
		UploadMaxAge:    24 * time.Hour,
		PurgeInterval:   10 * time.Minute,
		XLSXRowLimit:    1_048_575,
		ShutdownTimeout: 30 * time.Second,
		LogLevel:        "info",

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
	env("LOG_LEVEL", setStr(&c.LogLevel))

	env("MAX_UPLOAD_BYTES", setInt(&c.MaxUploadBytes))
	env("MAX_PENDING_UPLOAD_BYTES", setInt(&c.MaxPendingUploadBytes))
	if err := errors.Join(errs...); err != nil {
		return c, err
	}

	fs.StringVar(&c.Addr, "addr", c.Addr, "listen address (env ADDR)")
	fs.StringVar(&c.DatabaseURL, "database-url", c.DatabaseURL, "PostgreSQL URL; empty starts an embedded PostgreSQL (env DATABASE_URL)")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "data folder of the embedded PostgreSQL (env DATA_DIR)")
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
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error (env LOG_LEVEL)")

	fs.Func("max-upload-bytes", "most bytes one unfinalized upload may hold, e.g. 2GiB (env MAX_UPLOAD_BYTES)", setInt(&c.MaxUploadBytes))
	fs.Func("max-pending-upload-bytes", "most bytes all unfinalized uploads together may hold, e.g. 8GiB (env MAX_PENDING_UPLOAD_BYTES)", setInt(&c.MaxPendingUploadBytes))
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
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
	if c.UploadMaxAge <= 0 || c.PurgeInterval <= 0 {
		errs = append(errs, errors.New("upload max age and purge interval must be > 0"))
	}
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
