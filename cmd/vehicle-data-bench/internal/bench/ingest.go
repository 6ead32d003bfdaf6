package bench

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/vehicle-data/vehicle-data/internal/uploader"
)

// How the file is uploaded: as the dashboard and the CLI do by default.
const (
	ingestChunkBytes = 1 << 20
	ingestParallel   = 4
)

// IngestBaseline says what the service's finalize is compared with.
const IngestBaseline = `psql \copy of the same file into samples (the table behind vehicle_data) of a second database migrated by ` +
	`"vehicle-data migrate up": same columns, CHECK constraints, primary key, both indexes, identity column ` +
	`and the statement trigger that keeps the per-vehicle figures (the service's insert fires it too); ` +
	`vehicle_id comes from a column DEFAULT set only there. Both tables are truncated and a CHECKPOINT ` +
	`is taken before each timed load; fsync is on.`

// IngestReport is the outcome of RunIngest.
type IngestReport struct {
	Benchmark  string `json:"benchmark"` // "ingest"
	Rows       int    `json:"rows"`
	FileBytes  int64  `json:"file_bytes"`
	ChunkBytes int64  `json:"chunk_bytes"`
	Parallel   int    `json:"parallel"`
	Runs       int    `json:"runs"`
	Warmup     bool   `json:"warmup"`
	Baseline   string `json:"baseline"`
	// Upload is from the first request to the last chunk stored; Finalize from then to
	// the finalize answer.
	Upload   Seconds `json:"upload_seconds"`
	Finalize Seconds `json:"finalize_seconds"`
	Copy     Seconds `json:"copy_seconds"`
	// FinalizeToCopy is the ratio of the medians.
	FinalizeToCopy float64     `json:"finalize_to_copy"`
	ServerRSS      IngestRSS   `json:"server_rss_bytes"`
	Targets        []Target    `json:"targets"`
	Environment    Environment `json:"environment"`
}

// IngestRSS is the service's resident memory in bytes. One server process does every
// run, the warm-up included.
type IngestRSS struct {
	Idle     int64 `json:"idle"`     // once ready, before the first upload
	Upload   int64 `json:"upload"`   // highest sample while chunks were sent
	Finalize int64 `json:"finalize"` // highest sample during finalize
	Peak     int64 `json:"peak"`     // VmHWM at the end (or a higher sample): the process's peak
}

// RunIngest uploads and finalizes the generated file through the service's HTTP API
// and, in turn with each run, loads the same file with psql's \copy.
func RunIngest(ctx context.Context, opts Options) (rep *IngestReport, err error) {
	if opts, err = opts.withDefaults(); err != nil {
		return nil, err
	}
	l, err := openLab(ctx, opts)
	if err != nil {
		return nil, err
	}
	rep = &IngestReport{
		Benchmark: "ingest", Rows: opts.Rows, FileBytes: l.csvBytes, ChunkBytes: ingestChunkBytes,
		Parallel: ingestParallel, Runs: opts.Runs, Warmup: !opts.NoWarmup, Baseline: IngestBaseline,
	}
	defer func() {
		err = errors.Join(err, l.close())
		rep.Environment = l.env
		if err != nil {
			rep = nil
		}
	}()

	serverDB, err := l.migratedDatabase(ctx, "ingest_server")
	if err != nil {
		return rep, err
	}
	copyDB, err := l.copyTarget(ctx, "ingest_copy")
	if err != nil {
		return rep, err
	}
	srv, err := l.startServer(ctx, serverDB, "server-ingest")
	if err != nil {
		return rep, err
	}
	defer func() { err = errors.Join(err, srv.stop()) }()
	mem, err := srv.memory()
	if err != nil {
		return rep, err
	}
	rep.ServerRSS.Idle = mem.RSS
	sampler := startMemSampler(srv.pid(), "idle")

	var uploads, finalizes, copies []time.Duration
	for i := range runCount(opts) {
		label := runLabel(i, opts)
		up, fin, err := l.ingestOnce(ctx, srv, serverDB, sampler)
		if err != nil {
			return rep, errors.Join(fmt.Errorf("%s: %w", label, err), sampler.close())
		}
		cp, err := l.copyOnce(ctx, copyDB)
		if err != nil {
			return rep, errors.Join(fmt.Errorf("%s: %w", label, err), sampler.close())
		}
		l.logf("%s: upload %.3fs, finalize %.3fs, \\copy %.3fs", label, up.Seconds(), fin.Seconds(), cp.Seconds())
		if isWarmup(i, opts) {
			continue
		}
		uploads, finalizes, copies = append(uploads, up), append(finalizes, fin), append(copies, cp)
	}
	mem, err = srv.memory()
	if err = errors.Join(err, sampler.close()); err != nil {
		return rep, err
	}
	// The kernel updates its counters lazily, so a sample can exceed VmHWM by a little.
	rep.ServerRSS.Peak = max(mem.HWM, sampler.maxPeak())
	rep.ServerRSS.Upload = sampler.peak("upload")
	rep.ServerRSS.Finalize = sampler.peak("finalize")

	rep.Upload, rep.Finalize, rep.Copy = newSeconds(uploads), newSeconds(finalizes), newSeconds(copies)
	rep.FinalizeToCopy = ratio(rep.Finalize.Median, rep.Copy.Median)
	rep.Targets = []Target{
		newTarget(`finalize / \copy`, round(rep.FinalizeToCopy, 2), "<=", 1.3, ""),
		rssTarget("server peak RSS (VmHWM)", rep.ServerRSS.Peak, 100),
	}
	return rep, nil
}

// ingestOnce uploads and finalizes the file into an emptied samples table and returns the
// time to store every chunk and the time to finalize.
func (l *lab) ingestOnce(ctx context.Context, srv *serverProc, dbURL string, sampler *memSampler) (upload, finalize time.Duration, err error) {
	if err := l.emptyTables(ctx, dbURL); err != nil {
		return 0, 0, err
	}
	chunks := (l.csvBytes + ingestChunkBytes - 1) / ingestChunkBytes
	var (
		start      time.Time
		stored     atomic.Int64
		uploadedAt atomic.Int64 // nanoseconds after start when the last chunk was stored
	)
	opts := uploader.Options{
		Server:    srv.url,
		VehicleID: VehicleID,
		ChunkSize: ingestChunkBytes,
		Parallel:  ingestParallel,
		Retries:   -1, // a retry would hide a failure inside the timing
		// The uploader has no separate finalize call: this hook marks the moment the last
		// chunk is stored, after which the uploader only finalizes.
		AfterChunk: func(int32) {
			if stored.Add(1) == chunks {
				uploadedAt.Store(int64(time.Since(start)))
				sampler.setPhase("finalize")
			}
		},
	}
	sampler.setPhase("upload")
	start = time.Now()
	res, err := uploader.UploadFile(ctx, l.csvPath, opts)
	total := time.Since(start)
	sampler.setPhase("idle")
	if err != nil {
		return 0, 0, err
	}
	if n := stored.Load(); n != chunks {
		return 0, 0, fmt.Errorf("the uploader stored %d chunks, want %d: was an earlier upload resumed?", n, chunks)
	}
	if res.RowsInserted != int64(l.opts.Rows) || res.RowsInvalid != 0 {
		return 0, 0, fmt.Errorf("finalize inserted %d rows (%d received, %d duplicate, %d invalid), want %d",
			res.RowsInserted, res.RowsReceived, res.RowsDuplicate, res.RowsInvalid, l.opts.Rows)
	}
	upload = time.Duration(uploadedAt.Load())
	return upload, total - upload, nil
}

// copyOnce loads the file with psql's \copy into an emptied samples table.
func (l *lab) copyOnce(ctx context.Context, dbURL string) (time.Duration, error) {
	if err := l.emptyTables(ctx, dbURL); err != nil {
		return 0, err
	}
	d, n, err := l.psql.copyIn(ctx, dbURL, "samples", l.csvPath)
	if err != nil {
		return 0, err
	}
	if n != int64(l.opts.Rows) {
		return 0, fmt.Errorf("psql \\copy loaded %d rows, want %d", n, l.opts.Rows)
	}
	return d, nil
}

// runCount is the timed runs plus the warm-up.
func runCount(o Options) int {
	if o.NoWarmup {
		return o.Runs
	}
	return o.Runs + 1
}

func isWarmup(i int, o Options) bool { return i == 0 && !o.NoWarmup }

func runLabel(i int, o Options) string {
	switch {
	case isWarmup(i, o):
		return "warm-up"
	case o.NoWarmup:
		return fmt.Sprintf("run %d/%d", i+1, o.Runs)
	}
	return fmt.Sprintf("run %d/%d", i, o.Runs)
}
