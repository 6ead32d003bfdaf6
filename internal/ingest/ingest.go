// Package ingest stores the chunks of CSV uploads durably in PostgreSQL and finalizes an
// upload: it streams the chunks, in index order, through the CSV reader into a COPY and
// inserts the rows in one transaction, skipping duplicates. Nothing here knows HTTP: expected
// failures are apperr errors, or *MissingChunksError and *RowsInvalidError, whose bodies
// carry more than a detail.
package ingest

import (
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vehicle-data/vehicle-data/gen/db"
	"github.com/vehicle-data/vehicle-data/internal/apperr"
	"github.com/vehicle-data/vehicle-data/internal/config"
	"github.com/vehicle-data/vehicle-data/internal/csvrows"
	"github.com/vehicle-data/vehicle-data/internal/records"
)

const (
	// MaxTotalChunks bounds total_chunks, so that a status or a missing-chunks answer (one
	// index per missing chunk) stays small whatever a client claims.
	MaxTotalChunks = 100_000
	// MaxFileNameLen is the longest file name, in characters.
	MaxFileNameLen = 255
	// MaxReportedErrors is how many invalid rows a finalize reports; the rest are counted.
	MaxReportedErrors = 100
)

// Metrics receives counters from the service; the server wires it to Prometheus. Methods
// must be safe for concurrent use. A nil Metrics in Options records nothing.
type Metrics interface {
	// ChunkBytes is called once per stored chunk with its size.
	ChunkBytes(n int64)
	// RowsIngested is called once per successful finalize with the rows inserted.
	RowsIngested(n int64)
	// UploadsPurged is called by Purge with the number of abandoned uploads removed.
	UploadsPurged(n int64)
}

type noMetrics struct{}

func (noMetrics) ChunkBytes(int64)    {}
func (noMetrics) RowsIngested(int64)  {}
func (noMetrics) UploadsPurged(int64) {}

// Options configures a Service. The zero value is usable.
type Options struct {
	MaxChunkBytes int64        // largest chunk accepted, 1..config.MaxChunkBytesLimit; 0 means config.Default's
	Logger        *slog.Logger // nil discards logs
	Metrics       Metrics      // nil records nothing
	// FinalizePool runs finalizes and the purge, the long statements; nil: the pool given
	// to New. With its own pool a big finalize never takes a connection a chunk needs.
	FinalizePool *pgxpool.Pool
	// AcquireTimeout bounds the wait of a chunk or a status request for a connection of
	// New's pool, past which it is a 503; zero waits as long as the request's context.
	AcquireTimeout time.Duration

	// Quotas on unfinalized uploads (config.Validate keeps them consistent); 0 means
	// config.Default's.
	MaxUploadBytes        int64 // most bytes one upload's chunks may add up to (413 above)
	MaxPendingUploadBytes int64 // most bytes all unfinalized uploads together may hold (507 above)
}

// Service stores chunks and finalizes uploads. It is safe for concurrent use by any number
// of goroutines and server replicas sharing one database.
type Service struct {
	pool          *pgxpool.Pool // chunks and upload status
	long          *pgxpool.Pool // finalizes and the purge
	wait          time.Duration
	q             *db.Queries
	maxChunkBytes int64
	quota         quota
	log           *slog.Logger
	metrics       Metrics
	// pairSlot serialises taking the two connections a finalize needs, so that concurrent
	// finalizes cannot each hold one connection while waiting for a second one forever.
	pairSlot chan struct{}
	// vacuuming is set while a vacuum after a finalize runs; again asks it for one more.
	vacuuming, again atomic.Bool
}

// New returns a Service over pool. A finalize holds two connections of its pool at once (one
// runs the COPY, the other reads the chunks), so that pool needs at least two.
func New(pool *pgxpool.Pool, opts Options) *Service {
	s := &Service{
		pool:          pool,
		long:          opts.FinalizePool,
		wait:          opts.AcquireTimeout,
		q:             db.New(),
		maxChunkBytes: opts.MaxChunkBytes,
		quota:         newQuota(opts.MaxUploadBytes, opts.MaxPendingUploadBytes),
		log:           opts.Logger,
		metrics:       opts.Metrics,
		pairSlot:      make(chan struct{}, 1),
	}
	if s.long == nil {
		s.long = pool
	}
	if s.maxChunkBytes == 0 {
		s.maxChunkBytes = config.Default().MaxChunkBytes
	}
	if s.maxChunkBytes < 1 || s.maxChunkBytes > config.MaxChunkBytesLimit {
		// config.Validate rejects such a setting; reaching here is a caller's bug.
		panic(fmt.Sprintf("ingest: MaxChunkBytes %d outside 1..%d", s.maxChunkBytes, config.MaxChunkBytesLimit))
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.metrics == nil {
		s.metrics = noMetrics{}
	}
	return s
}

// MaxChunkBytes returns the largest chunk PutChunk accepts; the HTTP layer bounds the upload's
// request body and the chunk part with it.
func (s *Service) MaxChunkBytes() int64 { return s.maxChunkBytes }

// MissingChunksError is returned by Finalize when some chunks have not arrived (409 with
// missing_chunks). Nothing is lost: the client sends them and finalizes again.
type MissingChunksError struct {
	Total   int
	Missing []int // ascending
}

func (e *MissingChunksError) Error() string {
	return fmt.Sprintf("%d of %d chunks are missing", len(e.Missing), e.Total)
}

// RowsInvalidError is returned by Finalize without SkipInvalid when some rows are invalid
// (422). Nothing was inserted and the chunks are kept.
type RowsInvalidError struct {
	Invalid int64              // every invalid row
	Errors  []csvrows.RowError // the first MaxReportedErrors of them, in file order
}

func (e *RowsInvalidError) Error() string {
	return fmt.Sprintf("%d invalid rows: nothing was inserted (finalize with skip_invalid_rows to insert the valid rows)", e.Invalid)
}

// checkUploadID validates the two parts of an upload's identity. PostgreSQL text holds
// neither NUL nor invalid UTF-8, so those are the client's error, not a database fault.
func checkUploadID(vehicleID, fileName string) error {
	if err := checkText("vehicle_id", vehicleID, records.MaxVehicleIDLen); err != nil {
		return err
	}
	return checkText("file_name", fileName, MaxFileNameLen)
}

func checkText(field, v string, maxLen int) error {
	if err := records.CheckText(v, maxLen); err != nil {
		return apperr.InvalidField(field, "%v", err)
	}
	return nil
}

func checkTotal(total int) error {
	if total < 1 || total > MaxTotalChunks {
		return apperr.InvalidField("total_chunks", "is %d; it must be between 1 and %d", total, MaxTotalChunks)
	}
	return nil
}
