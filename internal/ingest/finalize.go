package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vehicle-data/vehicle-data/gen/db"
	"github.com/vehicle-data/vehicle-data/internal/apperr"
	"github.com/vehicle-data/vehicle-data/internal/csvrows"
	"github.com/vehicle-data/vehicle-data/internal/database"
)

// FinalizeRequest names the upload to finalize.
type FinalizeRequest struct {
	VehicleID   string
	FileName    string
	Total       int  // must equal the upload's total_chunks
	SkipInvalid bool // insert the valid rows even if some are invalid
}

// Result counts the rows of a finalized file. RowsReceived = RowsInserted + RowsDuplicate +
// RowsInvalid; blank lines and the header are not rows.
type Result struct {
	RowsReceived  int64
	RowsInserted  int64
	RowsDuplicate int64 // valid rows whose (vehicle_id, timestamp) was stored or came earlier in the file
	RowsInvalid   int64
	Errors        []csvrows.RowError // the first MaxReportedErrors invalid rows, in file order; never nil
	// WriteLSN is the primary's WAL position after the commit (database.WriteLSN); 0 when it
	// could not be read, the rows being committed all the same.
	WriteLSN database.LSN
}

// Finalize reads the upload's chunks, in index order, as one CSV file and inserts its valid
// rows in one transaction, skipping duplicates; on success the upload is deleted.
//
// Expected failures: apperr NotFound (no such upload), Conflict (total differs, or another
// finalize holds the upload), Invalid (bad header or malformed CSV), *MissingChunksError and
// *RowsInvalidError. After any failure nothing is inserted and the chunks are kept.
//
// Memory stays small whatever the file and chunk sizes: the chunks are fetched a part at a
// time while the rows stream into a COPY.
func (s *Service) Finalize(ctx context.Context, req FinalizeRequest) (Result, error) {
	if err := checkUploadID(req.VehicleID, req.FileName); err != nil {
		return Result{}, err
	}
	if err := checkTotal(req.Total); err != nil {
		return Result{}, err
	}
	res, err := s.finalizeTx(ctx, req)
	if _, expected := apperr.As(err); err != nil && !expected && ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		// The server reports a cancelled statement as its own error; say why it was cancelled.
		err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return res, database.Unavailable(err)
}

// finalizeTx is the finalize's one transaction: lock the upload, copy the file's rows into
// samples (or, when some may be duplicates, stage them and insert the new ones), delete the
// upload, commit.
//
// Cancelling ctx stops the running statement on the server: every pool comes from
// database.Open, whose pgx context watcher sends PostgreSQL a cancel request (and drops the
// connection only if the server does not answer within seconds), so the COPY or INSERT ends
// at once, the upload's lock is released and a retried finalize does not find "another
// finalize is running". That is the only cancellation path; this package adds none.
func (s *Service) finalizeTx(ctx context.Context, req FinalizeRequest) (Result, error) {
	start := time.Now()
	// The COPY occupies the transaction's connection, so the chunks are read on a second one.
	txConn, readConn, err := s.acquirePair(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("finalize: %w", err)
	}
	defer txConn.Release()
	defer readConn.Release()

	tx, err := txConn.Begin(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("finalize: begin: %w", err)
	}
	defer rollback(ctx, tx)

	chunkList, err := s.lockComplete(ctx, tx, req)
	if err != nil {
		return Result{}, err
	}
	// From here on the upload row is locked: PutChunk upserts that row before touching a
	// chunk, so it waits for us and the chunks read on readConn cannot change meanwhile.
	copyStart := time.Now()
	path := "copy"
	src, inserted, ok, err := s.copyDirect(ctx, tx, readConn, req, chunkList)
	if err != nil {
		return Result{}, err
	}
	copied := time.Now()
	if !ok {
		// Rows that may be duplicates: stage the file again and insert the new ones.
		path = "staged"
		if _, err := tx.Exec(ctx, createStagingTable); err != nil {
			return Result{}, fmt.Errorf("finalize: create staging table: %w", err)
		}
		if src, err = s.stage(ctx, tx, readConn, req, chunkList); err != nil {
			return Result{}, err
		}
		copied = time.Now()
		if inserted, err = s.insertStaged(ctx, tx, req.VehicleID, src); err != nil {
			return Result{}, fmt.Errorf("finalize: insert rows: %w", err)
		}
	}
	insertedAt := time.Now()
	if _, err := s.q.DeleteUpload(ctx, tx, db.DeleteUploadParams{VehicleID: req.VehicleID, FileName: req.FileName}); err != nil {
		return Result{}, fmt.Errorf("finalize: delete upload: %w", err)
	}
	// A cancel that came between statements stopped none of them: a caller that has gone
	// away gets nothing committed.
	if err := ctx.Err(); err != nil {
		return Result{}, fmt.Errorf("finalize: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return Result{}, fmt.Errorf("finalize: commit: %w", err)
	}
	lsn, _ := database.WriteLSN(ctx, txConn)
	res := Result{
		RowsReceived:  src.valid + src.invalid,
		RowsInserted:  inserted,
		RowsDuplicate: src.valid - inserted,
		RowsInvalid:   src.invalid,
		Errors:        src.errs,
		WriteLSN:      lsn,
	}
	s.metrics.RowsIngested(inserted)
	if inserted >= vacuumAfterRows {
		s.vacuumSoon()
	}
	s.log.InfoContext(ctx, "upload finalized",
		"vehicle_id", req.VehicleID, "file_name", req.FileName, "chunks", req.Total,
		"rows_received", res.RowsReceived, "rows_inserted", res.RowsInserted,
		"rows_duplicate", res.RowsDuplicate, "rows_invalid", res.RowsInvalid,
		"duration", time.Since(start).String(), "path", path,
		"copy_duration", copied.Sub(copyStart).String(), "insert_duration", insertedAt.Sub(copied).String())
	return res, nil
}

// lockComplete locks the upload row for the rest of tx, checks that the upload is complete
// and matches req, and returns its chunks in index order.
func (s *Service) lockComplete(ctx context.Context, tx pgx.Tx, req FinalizeRequest) ([]db.ListUploadChunksRow, error) {
	total, err := s.q.LockUploadForFinalize(ctx, tx, db.LockUploadForFinalizeParams{VehicleID: req.VehicleID, FileName: req.FileName})
	var pgErr *pgconn.PgError
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, errUploadNotFound(req.VehicleID, req.FileName)
	case errors.As(err, &pgErr) && pgErr.Code == codeLockNotAvailable:
		// A chunk being stored holds the same lock for a moment; the advice fits both.
		return nil, apperr.Conflict("another finalize of this upload is running (or a chunk is being stored); try again later")
	case err != nil:
		return nil, fmt.Errorf("finalize: lock upload: %w", err)
	}
	if int(total) != req.Total {
		return nil, apperr.Conflict("total_chunks is %d, but the upload has total_chunks %d", req.Total, total)
	}
	chunks, err := s.q.ListUploadChunks(ctx, tx, db.ListUploadChunksParams{VehicleID: req.VehicleID, FileName: req.FileName})
	if err != nil {
		return nil, fmt.Errorf("finalize: list chunks: %w", err)
	}
	received := make([]int, len(chunks))
	for i, c := range chunks {
		received[i] = int(c.ChunkIndex)
	}
	if m := missing(req.Total, received); len(m) > 0 {
		return nil, &MissingChunksError{Total: req.Total, Missing: m}
	}
	return chunks, nil
}

// insertStaged moves the staged rows into samples, skipping duplicates, and returns how
// many it inserted.
func (s *Service) insertStaged(ctx context.Context, tx pgx.Tx, vehicleID string, src *rowSource) (int64, error) {
	if src.valid == 0 {
		return 0, nil
	}
	key, err := s.q.EnsureVehicleKey(ctx, tx, vehicleID)
	if err != nil {
		return 0, fmt.Errorf("vehicle key: %w", err)
	}
	// A savepoint, so that losing a race with a concurrent insert costs a retry, not the upload.
	sp, err := tx.Begin(ctx)
	if err != nil {
		return 0, err
	}
	// QueryExecModeExec: planned with the actual bounds every time, never as a generic plan.
	tag, err := sp.Exec(ctx, insertNew, pgx.QueryExecModeExec, key, src.first, src.last)
	if err == nil {
		return tag.RowsAffected(), sp.Commit(ctx) // releases the savepoint
	}
	// A deadlock too: a direct COPY of the same vehicle inserts in its file's order, not in ours.
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != codeUniqueViolation && pgErr.Code != codeDeadlockDetected {
		return 0, err
	}
	if err := sp.Rollback(ctx); err != nil {
		return 0, err
	}
	s.log.InfoContext(ctx, "finalize: concurrent insert of the same records; retrying with ON CONFLICT", "vehicle_id", vehicleID)
	tag, err = tx.Exec(ctx, insertNewOnConflict, key)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// acquirePair takes two pooled connections. Only one caller at a time may be between its first
// and second Acquire; otherwise N concurrent finalizes on a pool of N connections could each
// hold one and wait for another forever.
func (s *Service) acquirePair(ctx context.Context) (*pgxpool.Conn, *pgxpool.Conn, error) {
	if n := s.long.Config().MaxConns; n < 2 {
		return nil, nil, fmt.Errorf("the pool allows %d connection(s); a finalize needs 2", n)
	}
	select {
	case s.pairSlot <- struct{}{}:
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	defer func() { <-s.pairSlot }()
	first, err := s.long.Acquire(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("acquire connection: %w", err)
	}
	second, err := s.long.Acquire(ctx)
	if err != nil {
		first.Release()
		return nil, nil, fmt.Errorf("acquire connection: %w", err)
	}
	return first, second, nil
}

// vacuumAfterRows is the smallest finalize followed by a vacuum: below it the first reads of
// the new rows cost little, and autovacuum's own pace is fine.
const vacuumAfterRows = 10_000

// vacuumSoon vacuums samples and its rollups in the background (see VacuumSamples: the first
// reads of a million fresh rows, a chart right after the upload, are otherwise about twice as
// slow). One runs at a time per process; finalizes that end meanwhile ask for one more.
func (s *Service) vacuumSoon() {
	s.again.Store(true)
	if !s.vacuuming.CompareAndSwap(false, true) {
		return
	}
	go func() {
		for {
			for s.again.Swap(false) {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
				t0 := time.Now()
				err := s.q.VacuumSamples(ctx, s.long)
				cancel()
				if err != nil {
					s.log.Warn("vacuum after finalize", "err", err)
				} else {
					s.log.Info("vacuumed samples after a finalize", "duration", time.Since(t0).String())
				}
			}
			s.vacuuming.Store(false)
			// A request that came between the last Swap and the Store above is not lost.
			if !s.again.Load() || !s.vacuuming.CompareAndSwap(false, true) {
				return
			}
		}
	}()
}
