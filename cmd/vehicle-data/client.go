package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/vehicle-data/vehicle-data/internal/config"
	"github.com/vehicle-data/vehicle-data/internal/sample"
	"github.com/vehicle-data/vehicle-data/internal/uploader"
)

// uploadFlags are the flags upload and import share.
func uploadFlags(fs *flag.FlagSet, getenv func(string) string, opts *uploader.Options, chunk *string) {
	server := getenv("VEHICLE_DATA_SERVER")
	if server == "" {
		server = "http://localhost:8080"
	}
	fs.StringVar(&opts.Server, "server", server, "API base URL (env VEHICLE_DATA_SERVER)")
	fs.StringVar(&opts.Token, "token", getenv("VEHICLE_DATA_TOKEN"), "bearer token (env VEHICLE_DATA_TOKEN)")
	fs.StringVar(chunk, "chunk-size", "1MiB", "chunk size; resuming needs the same size")
	fs.IntVar(&opts.Parallel, "parallel", 4, "chunks in flight at once")
	fs.BoolVar(&opts.SkipInvalid, "skip-invalid-rows", false, "insert the valid rows and report the invalid ones")
}

func finishUploadFlags(opts *uploader.Options, chunk string, stderr io.Writer) error {
	n, err := config.ParseSize(chunk)
	if err != nil || n < 1 {
		return fmt.Errorf("--chunk-size: %q is not a positive size", chunk)
	}
	opts.ChunkSize = n
	opts.Progress = stderr
	opts.IsTerminal = uploader.IsTerminal(stderr)
	return nil
}

func upload(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("upload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: vehicle-data upload [flags] FILE...\n\nUploads CSV files in chunks; an interrupted upload resumes where it stopped.")
		fs.PrintDefaults()
	}
	var (
		opts  uploader.Options
		chunk string
	)
	uploadFlags(fs, getenv, &opts, &chunk)
	fs.StringVar(&opts.VehicleID, "vehicle-id", "", "vehicle of the rows (default: each file's name without .csv)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("upload: no file given")
	}
	if err := finishUploadFlags(&opts, chunk, stderr); err != nil {
		return err
	}
	var failed int
	for _, path := range fs.Args() {
		res, err := uploader.UploadFile(ctx, path, opts)
		if err != nil {
			failed++
			fmt.Fprintf(stderr, "%s: %v\n", path, err)
			continue
		}
		fmt.Fprintf(stdout, "%s: %s\n", path, uploader.FormatResult(res))
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d file(s) failed", failed, fs.NArg())
	}
	return nil
}

func importDir(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: vehicle-data import [flags] DIR\n\nUploads every *.csv file of DIR; each file's name (without .csv) is its vehicle id.")
		fs.PrintDefaults()
	}
	var (
		opts  uploader.Options
		chunk string
	)
	uploadFlags(fs, getenv, &opts, &chunk)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("import: give exactly one folder")
	}
	if err := finishUploadFlags(&opts, chunk, stderr); err != nil {
		return err
	}
	results, err := uploader.UploadDir(ctx, fs.Arg(0), opts)
	for _, r := range results {
		if r.Err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", r.Path, r.Err)
		} else {
			fmt.Fprintf(stdout, "%s: %s\n", r.Path, uploader.FormatResult(r.Result))
		}
	}
	return err
}

func sampleCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sample", flag.ContinueOnError)
	fs.SetOutput(stderr)
	vehicles := fs.Int("vehicles", 3, "number of vehicles (one file each)")
	rows := fs.Int("rows", 1000, "rows per file")
	out := fs.String("out", "sample-data", "output folder")
	seed := fs.Int64("seed", 1, "random seed; the same seed writes the same files")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *vehicles < 1 || *rows < 0 {
		return errors.New("sample: --vehicles must be >= 1 and --rows >= 0")
	}
	paths, err := sample.WriteDir(*out, *vehicles, *rows, *seed)
	if err != nil {
		return err
	}
	for _, p := range paths {
		fmt.Fprintln(stdout, p)
	}
	return nil
}
