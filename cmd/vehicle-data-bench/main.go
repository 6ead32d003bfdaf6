// Command vehicle-data-bench measures the service's bulk upload and export against
// psql's \copy on the same PostgreSQL, with the server's peak memory:
//
//	vehicle-data-bench ingest [flags]    upload + finalize vs \copy FROM (make bench-ingest)
//	vehicle-data-bench export [flags]    CSV, JSON, NDJSON, XLSX vs \copy TO (make bench-export)
//	vehicle-data-bench list [flags]      reads at fleet scale: list and series mixes vs pgbench (make bench-list)
//	vehicle-data-bench replicas [flags]  1, 2, 3 replicas behind nginx: list and ingest mixes, CPU by process (make bench-replicas)
//
// It runs the binary built by `make build` (bin/vehicle-data) and needs psql and, without
// --database-url, PostgreSQL's server binaries. Missing a target is reported, not an
// error: it exits non-zero only when a step fails.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vehicle-data/vehicle-data/cmd/vehicle-data-bench/internal/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "vehicle-data-bench:", err)
		}
		os.Exit(1)
	}
}

const usage = `usage: vehicle-data-bench ingest|export|list|replicas [flags]

  ingest   upload a generated CSV file through the HTTP API in 1 MiB chunks and finalize it,
           against psql's \copy of the same file into the same table
  export   export the same rows as CSV, JSON, NDJSON and XLSX through the HTTP API,
           against psql's \copy (SELECT ...) TO STDOUT
  list     load --vehicles x --rows samples with \copy, then the dashboard's list mix and the
           chart's series mix through the server (unloaded, 8 and 32 connections) against
           pgbench of the same SQL, every ordering, counts, and exports against \copy
  replicas on the same loaded database, 1, 2 and 3 servers behind nginx: the list mix, an
           ingest mix of small uploads and both at once, with the CPU time of each kind of
           process, against pgbench of the list SQL

flags (after the command):
`

// run is the whole program; results go to stdout, progress to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	cmd := args[0]
	if cmd == "-h" || cmd == "--help" || cmd == "help" {
		fmt.Fprint(stdout, usage)
		return nil
	}
	if cmd != "ingest" && cmd != "export" && cmd != "list" && cmd != "replicas" {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q: want ingest, export, list or replicas", cmd)
	}

	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		opts    = bench.Options{Progress: stderr}
		out     string
		formats string
		warmup  bool
	)
	fs.IntVar(&opts.Rows, "rows", bench.DefaultRows, "rows in the generated file")
	fs.IntVar(&opts.Runs, "runs", bench.DefaultRuns, "timed runs of each step; the median is reported")
	fs.BoolVar(&warmup, "warmup", true, "do an untimed run first so that caches are comparable")
	fs.Int64Var(&opts.Seed, "seed", 1, "seed of the generated data")
	fs.BoolVar(&opts.Keep, "keep", false, "keep the temporary folder (data, logs, embedded cluster) and databases")
	fs.StringVar(&opts.DatabaseURL, "database-url", "", "PostgreSQL server to create fresh databases on (postgres:// URL); empty starts an embedded one")
	fs.StringVar(&opts.ServerBin, "bin", bench.DefaultServerBin, "the vehicle-data binary to measure")
	fs.StringVar(&opts.Psql, "psql", "", "psql binary (default: from PATH or the PostgreSQL installation)")
	// list and replicas print tables only: there --out would be accepted and ignored.
	if cmd == "ingest" || cmd == "export" {
		fs.StringVar(&out, "out", "", "also write the results as JSON to this file")
	}
	if cmd == "export" {
		fs.StringVar(&formats, "formats", strings.Join(bench.Formats, ","), "comma-separated export formats")
	}
	var (
		lopts    bench.ListOptions
		ropts    bench.ReplicaOptions
		replicas string
	)
	if cmd == "list" || cmd == "replicas" {
		run := 30 * time.Second
		if cmd == "replicas" {
			run = 20 * time.Second
		}
		fs.IntVar(&lopts.Vehicles, "vehicles", 10, "vehicles, of --rows samples each")
		fs.DurationVar(&lopts.Duration, "duration", run, "length of each loaded run")
		fs.BoolVar(&lopts.Reuse, "reuse", false, "keep the loaded database (vdbench_fleet) and reuse it when it holds the rows")
	}
	if cmd == "list" {
		fs.BoolVar(&lopts.ShiftStateIndex, "shift-state-index", false, "create the optional index of db/optional/shift_state_index.sql before the run (without: drop it)")
	}
	if cmd == "replicas" {
		fs.StringVar(&replicas, "replicas", "1,2,3", "comma-separated replica counts")
		fs.IntVar(&ropts.ListConns, "list-conns", 32, "clients of the list mix")
		fs.IntVar(&ropts.IngestWorkers, "ingest-workers", 8, "uploaders of the ingest mix")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	opts.NoWarmup = !warmup
	if opts.Rows < 1 || opts.Runs < 1 {
		return fmt.Errorf("--rows and --runs must be at least 1")
	}
	if cmd == "export" {
		opts.Formats = splitList(formats)
	}

	if cmd == "list" {
		lopts.Options = opts
		return bench.RunList(ctx, lopts, stdout)
	}
	if cmd == "replicas" {
		lopts.Options = opts
		ropts.ListOptions = lopts
		for _, r := range splitList(replicas) {
			n, err := strconv.Atoi(r)
			if err != nil {
				return fmt.Errorf("--replicas: %q is not a number", r)
			}
			ropts.Replicas = append(ropts.Replicas, n)
		}
		if len(ropts.Replicas) == 0 {
			return errors.New("--replicas: no replica count given")
		}
		return bench.RunReplicas(ctx, ropts, stdout)
	}
	var (
		report any
		err    error
	)
	if cmd == "ingest" {
		var rep *bench.IngestReport
		if rep, err = bench.RunIngest(ctx, opts); err == nil {
			report, err = rep, bench.WriteIngest(stdout, rep)
		}
	} else {
		var rep *bench.ExportReport
		if rep, err = bench.RunExport(ctx, opts); err == nil {
			report, err = rep, bench.WriteExport(stdout, rep)
		}
	}
	if err != nil {
		return err
	}
	if out != "" {
		return writeJSON(out, report)
	}
	return nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	return nil
}

func splitList(s string) []string {
	out := []string{}
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
