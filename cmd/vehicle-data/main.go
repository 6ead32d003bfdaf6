// Command vehicle-data serves the vehicle telemetry API and is its command-line client.
//
//	vehicle-data serve                 run the API (embedded PostgreSQL unless DATABASE_URL is set)
//	vehicle-data migrate up|down|status
//	vehicle-data upload FILE...        resumable chunked upload of CSV files
//	vehicle-data import DIR            upload every *.csv of a folder
//	vehicle-data sample --out DIR      write synthetic telemetry files
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "vehicle-data:", err)
		}
		os.Exit(1)
	}
}

const usage = `usage: vehicle-data <command> [flags]

commands:
  serve      run the HTTP API (see 'vehicle-data serve -h')
  migrate    up | down | status: manage the database schema
  upload     upload CSV files through the chunked upload API, resuming interrupted uploads
  import     upload every *.csv file of a folder
  sample     write synthetic telemetry CSV files
`

// run is the whole program, with its environment passed in so tests can drive it.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return serve(ctx, rest, getenv, stderr)
	case "migrate":
		return migrate(ctx, rest, getenv, stdout, stderr)
	case "upload":
		return upload(ctx, rest, getenv, stdout, stderr)
	case "import":
		return importDir(ctx, rest, getenv, stdout, stderr)
	case "sample":
		return sampleCmd(rest, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}
