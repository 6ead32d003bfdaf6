package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/vehicle-data/vehicle-data/gen/client"
	"github.com/vehicle-data/vehicle-data/internal/config"
)

// Formats are the export formats, in the order they are measured.
var Formats = []string{"csv", "json", "ndjson", "xlsx"}

func isFormat(f string) bool { return slices.Contains(Formats, f) }

// xlsxRowLimit is the service's default XLSX row limit (the server runs with the defaults): a
// larger export is refused, so it is not measured.
var xlsxRowLimit = config.Default().XLSXRowLimit

// ExportBaseline says what each export is compared with.
const ExportBaseline = `psql \copy (SELECT id, 'X', timestamp, speed, odometer, soc, elevation, shift_state ` +
	`FROM samples WHERE vehicle_key = (the key of X) ORDER BY timestamp, id) TO STDOUT WITH CSV HEADER, the service's own query, ` +
	`on the same database; ` +
	`psql's output is read through a pipe and counted, as each HTTP body is read and counted. One \copy run ` +
	`precedes each timed export run; the median is over all of them. The rows were loaded with \copy, then ` +
	`VACUUM ANALYZE and a CHECKPOINT.`

// ExportReport is the outcome of RunExport.
type ExportReport struct {
	Benchmark   string         `json:"benchmark"` // "export"
	Rows        int            `json:"rows"`
	Runs        int            `json:"runs"`
	Warmup      bool           `json:"warmup"`
	Baseline    string         `json:"baseline"`
	Copy        Seconds        `json:"copy_seconds"`
	CopyBytes   int64          `json:"copy_bytes"`
	Formats     []FormatResult `json:"formats"`
	Targets     []Target       `json:"targets"`
	Environment Environment    `json:"environment"`
}

// FormatResult is one export format's figures. Each format has a server process of its
// own, so that its peak is its own.
type FormatResult struct {
	Format        string  `json:"format"`
	Skipped       string  `json:"skipped,omitempty"` // why it was not measured
	Seconds       Seconds `json:"seconds"`
	Bytes         int64   `json:"bytes"`
	RowsPerSecond float64 `json:"rows_per_second"`
	RatioToCopy   float64 `json:"ratio_to_copy"`
	// Resident memory of the server in bytes: once ready, the highest sample during the
	// timed exports, and VmHWM at the end or a higher sample (the process's peak, warm-up
	// included).
	IdleRSS   int64 `json:"idle_rss_bytes"`
	ExportRSS int64 `json:"export_rss_bytes"`
	PeakRSS   int64 `json:"peak_rss_bytes"`
}

// RunExport loads the generated rows into a database and times each format's export
// through the service's HTTP API against psql's \copy TO of the same rows.
func RunExport(ctx context.Context, opts Options) (rep *ExportReport, err error) {
	if opts, err = opts.withDefaults(); err != nil {
		return nil, err
	}
	l, err := openLab(ctx, opts)
	if err != nil {
		return nil, err
	}
	rep = &ExportReport{Benchmark: "export", Rows: opts.Rows, Runs: opts.Runs, Warmup: !opts.NoWarmup, Baseline: ExportBaseline}
	defer func() {
		err = errors.Join(err, l.close())
		rep.Environment = l.env
		if err != nil {
			rep = nil
		}
	}()

	dbURL, err := l.loadForExport(ctx)
	if err != nil {
		return rep, err
	}
	var copies []time.Duration
	copyRun := func(label string) error {
		d, n, err := l.psql.copyOut(ctx, dbURL, VehicleID)
		if err != nil {
			return fmt.Errorf("%s: %w", label, err)
		}
		l.logf("%s: \\copy TO %.3fs, %d bytes", label, d.Seconds(), n)
		rep.CopyBytes = n
		copies = append(copies, d)
		return nil
	}
	if !opts.NoWarmup {
		if err := copyRun(`\copy warm-up`); err != nil {
			return rep, err
		}
		copies = copies[:0]
	}
	for _, format := range opts.Formats {
		fr, err := l.exportFormat(ctx, dbURL, format, copyRun)
		if err != nil {
			return rep, fmt.Errorf("export %s: %w", format, err)
		}
		rep.Formats = append(rep.Formats, fr)
	}

	rep.Copy = newSeconds(copies)
	for i := range rep.Formats {
		fr := &rep.Formats[i]
		if fr.Skipped == "" {
			fr.RatioToCopy = ratio(fr.Seconds.Median, rep.Copy.Median)
		}
	}
	rep.Targets = exportTargets(rep.Formats)
	return rep, nil
}

// loadForExport creates a database holding the generated rows of VehicleID.
func (l *lab) loadForExport(ctx context.Context) (string, error) {
	dbURL, err := l.copyTarget(ctx, "export")
	if err != nil {
		return "", err
	}
	began := time.Now()
	if _, n, err := l.psql.copyIn(ctx, dbURL, "samples", l.csvPath); err != nil {
		return "", err
	} else if n != int64(l.opts.Rows) {
		return "", fmt.Errorf("psql \\copy loaded %d rows, want %d", n, l.opts.Rows)
	}
	// Hint bits and the visibility map set once, so that no timed run pays for them.
	if err := l.pg.exec(ctx, dbURL, "VACUUM (ANALYZE) samples"); err != nil {
		return "", err
	}
	if err := l.pg.checkpoint(ctx); err != nil {
		return "", err
	}
	l.logf("loaded %d rows for export in %s", l.opts.Rows, since(began))
	return dbURL, nil
}

// exportFormat measures one format on a fresh server process; copyRun is called before
// each timed run so that the baseline is measured interleaved with every format.
func (l *lab) exportFormat(ctx context.Context, dbURL, format string, copyRun func(label string) error) (fr FormatResult, err error) {
	fr.Format = format
	if format == "xlsx" && int64(l.opts.Rows) > xlsxRowLimit {
		fr.Skipped = fmt.Sprintf("over the service's XLSX limit of %d rows", xlsxRowLimit)
		l.logf("xlsx: skipped, %s", fr.Skipped)
		return fr, nil
	}
	srv, err := l.startServer(ctx, dbURL, "server-export-"+format)
	if err != nil {
		return fr, err
	}
	defer func() { err = errors.Join(err, srv.stop()) }()
	mem, err := srv.memory()
	if err != nil {
		return fr, err
	}
	fr.IdleRSS = mem.RSS
	sampler := startMemSampler(srv.pid(), "idle")
	api, err := client.NewClient(srv.url, client.WithHTTPClient(&http.Client{
		// Bytes as the service sends them: no transparent gzip.
		Transport: &http.Transport{DisableCompression: true},
	}))
	if err != nil {
		return fr, errors.Join(err, sampler.close())
	}

	var times []time.Duration
	for i := range runCount(l.opts) {
		label := format + " " + runLabel(i, l.opts)
		if !isWarmup(i, l.opts) {
			if err := copyRun(label); err != nil {
				return fr, errors.Join(err, sampler.close())
			}
		}
		phase := "export"
		if isWarmup(i, l.opts) {
			phase = "warm-up"
		}
		sampler.setPhase(phase)
		d, n, err := exportOnce(ctx, api, format)
		sampler.setPhase("idle")
		if err != nil {
			return fr, errors.Join(fmt.Errorf("%s: %w", label, err), sampler.close())
		}
		l.logf("%s: %.3fs, %d bytes", label, d.Seconds(), n)
		if fr.Bytes != 0 && n != fr.Bytes && format != "xlsx" {
			return fr, errors.Join(fmt.Errorf("%s: %d bytes, but an earlier run gave %d", label, n, fr.Bytes), sampler.close())
		}
		fr.Bytes = n
		if !isWarmup(i, l.opts) {
			times = append(times, d)
		}
	}
	mem, err = srv.memory()
	if err = errors.Join(err, sampler.close()); err != nil {
		return fr, err
	}
	// The kernel updates its counters lazily, so a sample can exceed VmHWM by a little.
	fr.PeakRSS = max(mem.HWM, sampler.maxPeak())
	fr.ExportRSS = sampler.peak("export")
	fr.Seconds = newSeconds(times)
	fr.RowsPerSecond = ratio(float64(l.opts.Rows), fr.Seconds.Median)
	return fr, nil
}

// exportOnce downloads one export of VehicleID, reading the body to the end, and
// returns the time from the request to the last byte and the body's size.
func exportOnce(ctx context.Context, api *client.Client, format string) (time.Duration, int64, error) {
	vehicleID := VehicleID
	f := client.ExportVehicleDataParamsExport(format)
	start := time.Now()
	resp, err := api.ExportVehicleData(ctx, &client.ExportVehicleDataParams{VehicleId: &vehicleID, Export: &f})
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 2000))
		return 0, 0, fmt.Errorf("server answered %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	n, err := io.Copy(io.Discard, resp.Body)
	d := time.Since(start)
	if err != nil {
		return 0, 0, fmt.Errorf("read the body after %d bytes: %w", n, err)
	}
	return d, n, nil
}

// exportTargets are the goals for the formats measured.
func exportTargets(formats []FormatResult) []Target {
	var ts []Target
	for _, fr := range formats {
		if fr.Skipped != "" {
			continue
		}
		switch fr.Format {
		case "csv":
			ts = append(ts, newTarget(`csv / \copy`, round(fr.RatioToCopy, 2), "<=", 1.3, ""))
		case "json", "ndjson":
			ts = append(ts, newTarget(fr.Format+` / \copy`, round(fr.RatioToCopy, 2), "<=", 2, ""))
		}
		switch fr.Format {
		case "csv", "json", "ndjson":
			ts = append(ts, rssTarget(fr.Format+" server peak RSS", fr.PeakRSS, 64))
		case "xlsx":
			ts = append(ts,
				rssTarget("xlsx server peak RSS", fr.PeakRSS, 300),
				newTarget("xlsx rows/s", round(fr.RowsPerSecond, 0), ">=", 100_000, ""))
		}
	}
	return ts
}
