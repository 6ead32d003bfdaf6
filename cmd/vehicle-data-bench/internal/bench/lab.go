// Package bench measures the service's bulk paths against PostgreSQL's own: a chunked
// upload and finalize against psql's \copy FROM of the same file, and each export format
// against psql's \copy TO of the same rows, all on one PostgreSQL server in one run so
// that the ratios mean something. The service runs as the real `vehicle-data serve`
// binary in a subprocess, whose resident memory is read from /proc (Linux only).
//
// It is the library behind `make bench-ingest` and `make bench-export`.
package bench

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/vehicle-data/vehicle-data/internal/sample"
)

// VehicleID is the vehicle of every generated row.
const VehicleID = "bench-vehicle"

// Defaults of Options.
const (
	DefaultRows      = 1_000_000
	DefaultRuns      = 3
	DefaultServerBin = "bin/vehicle-data"
)

// Options configure a benchmark run.
type Options struct {
	// Rows in the generated file; 0 means DefaultRows.
	Rows int
	// Runs of each timed step, reported by their median; 0 means DefaultRuns.
	Runs int
	// NoWarmup skips the untimed first run that brings caches to the same state for
	// every timed one.
	NoWarmup bool
	// Seed of the generated data.
	Seed int64
	// Keep leaves the temporary folder (data, server logs, the embedded cluster) and the
	// databases in place.
	Keep bool
	// DatabaseURL of a PostgreSQL server to create fresh databases on; empty starts an
	// embedded one in the temporary folder.
	DatabaseURL string
	// ServerBin is the vehicle-data binary; empty means DefaultServerBin.
	ServerBin string
	// Psql is the psql binary; empty looks for it.
	Psql string
	// Formats to export; nil means all of Formats.
	Formats []string
	// Progress receives a line per step; nil discards them.
	Progress io.Writer
}

func (o Options) withDefaults() (Options, error) {
	o.Rows = cmp.Or(o.Rows, DefaultRows)
	o.Runs = cmp.Or(o.Runs, DefaultRuns)
	o.ServerBin = cmp.Or(o.ServerBin, DefaultServerBin)
	if o.Rows < 1 {
		return o, fmt.Errorf("rows must be at least 1, got %d", o.Rows)
	}
	if o.Runs < 1 {
		return o, fmt.Errorf("runs must be at least 1, got %d", o.Runs)
	}
	if o.Formats == nil {
		o.Formats = Formats
	}
	if len(o.Formats) == 0 {
		return o, errors.New("no export format given")
	}
	for _, f := range o.Formats {
		if !isFormat(f) {
			return o, fmt.Errorf("unknown export format %q: want some of %s", f, strings.Join(Formats, ","))
		}
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	return o, nil
}

// Environment describes where a run happened, for the report.
type Environment struct {
	Started    time.Time `json:"started"`
	Postgres   string    `json:"postgres"`
	CPUs       int       `json:"cpus"`
	GoVersion  string    `json:"go_version"`
	LoadBefore string    `json:"load_before"`
	LoadAfter  string    `json:"load_after"`
	TempDir    string    `json:"temp_dir,omitempty"` // when kept
}

// lab is what both benchmarks need: a temporary folder, PostgreSQL, the generated file,
// the service's binary and psql.
type lab struct {
	opts     Options
	dir      string
	pg       *postgres
	psql     psql
	bin      string
	csvPath  string
	csvBytes int64
	env      Environment
}

// openLab prepares everything; close undoes it.
func openLab(ctx context.Context, opts Options) (*lab, error) {
	l, err := openLabNoSample(ctx, opts)
	if err != nil {
		return nil, err
	}
	if err := l.writeSample(); err != nil {
		return nil, errors.Join(err, l.close())
	}
	return l, nil
}

// openLabNoSample is openLab without the one-vehicle sample file (the list benchmark writes
// its own fleet).
func openLabNoSample(ctx context.Context, opts Options) (_ *lab, err error) {
	l := &lab{opts: opts, env: Environment{Started: time.Now().UTC(), CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), LoadBefore: loadAverage()}}
	if l.bin, err = filepath.Abs(opts.ServerBin); err != nil {
		return nil, err
	}
	if _, err := os.Stat(l.bin); err != nil {
		return nil, fmt.Errorf("server binary: %w (run make build)", err)
	}
	if l.psql.path, err = findPsql(opts.Psql); err != nil {
		return nil, err
	}
	if l.dir, err = os.MkdirTemp("", "vehicle-data-bench-"); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, l.close())
		}
	}()
	// The embedded cluster lives inside and runs as another OS user when we are root.
	if err := os.Chmod(l.dir, 0o755); err != nil {
		return nil, err
	}
	l.logf("temporary folder %s", l.dir)
	if l.pg, err = startPostgres(ctx, opts.DatabaseURL, l.dir); err != nil {
		return nil, err
	}
	if l.env.Postgres, err = l.pg.settings(ctx); err != nil {
		return nil, err
	}
	l.logf("%s", l.env.Postgres)
	return l, nil
}

// writeSample generates the rows into VehicleID.csv.
func (l *lab) writeSample() error {
	began := time.Now()
	l.csvPath = filepath.Join(l.dir, VehicleID+".csv")
	f, err := os.Create(l.csvPath)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	err = sample.Write(w, sample.Options{VehicleID: VehicleID, Rows: l.opts.Rows, Seed: l.opts.Seed})
	err = errors.Join(err, w.Flush(), f.Close())
	if err != nil {
		return fmt.Errorf("generate %s: %w", l.csvPath, err)
	}
	info, err := os.Stat(l.csvPath)
	if err != nil {
		return err
	}
	l.csvBytes = info.Size()
	l.logf("generated %d rows, %.1f MiB, in %s", l.opts.Rows, mib(l.csvBytes), since(began))
	return nil
}

// migratedDatabase creates a database and migrates it with the service's own command.
func (l *lab) migratedDatabase(ctx context.Context, name string) (string, error) {
	dbURL, err := l.pg.createDatabase(ctx, name)
	if err != nil {
		return "", err
	}
	return dbURL, l.migrate(ctx, dbURL)
}

// migrate applies the service's migrations with its own binary.
func (l *lab) migrate(ctx context.Context, dbURL string) error {
	cmd := exec.CommandContext(ctx, l.bin, "migrate", "up", "--database-url", dbURL, "--log-level", "warn")
	cmd.Env = serverEnv(os.Environ())
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("migrate %s: %w: %s", redact(dbURL), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// copyTarget creates a database migrated like the service's, whose samples take VehicleID's
// key as the default of vehicle_key, so that psql can \copy the file, which has no such
// column, into the very table the service inserts into.
func (l *lab) copyTarget(ctx context.Context, name string) (string, error) {
	dbURL, err := l.migratedDatabase(ctx, name)
	if err != nil {
		return "", err
	}
	err = l.pg.exec(ctx, dbURL, `DO $$ BEGIN EXECUTE format('ALTER TABLE samples ALTER COLUMN vehicle_key SET DEFAULT %s', vehicle_key_for(`+quoteLiteral(VehicleID)+`)); END $$`)
	return dbURL, err
}

// emptyTables empties samples and the rollups and figures its triggers keep (the vehicle keeps
// its key), and checkpoints, so that every timed load starts from the same state. Only the
// rollups the schema has: -bin may be an earlier commit's binary, migrated by its own files.
func (l *lab) emptyTables(ctx context.Context, dbURL string) error {
	const truncate = `DO $$ BEGIN EXECUTE 'TRUNCATE ' || (SELECT string_agg(t, ', ') FROM unnest(ARRAY['samples', 'sample_five_minutes', 'sample_hours', 'sample_hour_states']) t WHERE to_regclass(t) IS NOT NULL); END $$`
	if err := l.pg.exec(ctx, dbURL, truncate, "UPDATE vehicles SET record_count = 0, first_timestamp = NULL, last_timestamp = NULL"); err != nil {
		return err
	}
	return l.pg.checkpoint(ctx)
}

// startServer runs the service against dbURL, logging to name.log in the folder.
func (l *lab) startServer(ctx context.Context, dbURL, name string, flags ...string) (*serverProc, error) {
	return startServer(ctx, l.bin, dbURL, filepath.Join(l.dir, name+".log"), flags...)
}

func (l *lab) logf(format string, args ...any) {
	fmt.Fprintf(l.opts.Progress, format+"\n", args...)
}

// close stops PostgreSQL and removes the folder unless kept.
func (l *lab) close() error {
	l.env.LoadAfter = loadAverage()
	var err error
	if l.pg != nil {
		err = l.pg.stop(l.opts.Keep)
	}
	if l.opts.Keep {
		l.env.TempDir = l.dir
		l.logf("kept %s", l.dir)
		return err
	}
	return errors.Join(err, os.RemoveAll(l.dir))
}

// loadAverage is the first three fields of /proc/loadavg, or "unknown": others may be
// using the machine, and the report should say so.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

func since(t time.Time) time.Duration { return time.Since(t).Round(time.Millisecond) }
