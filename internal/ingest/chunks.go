package ingest

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vehicle-data/vehicle-data/gen/db"
	"github.com/vehicle-data/vehicle-data/internal/apperr"
	"github.com/vehicle-data/vehicle-data/internal/database"
)

// ChunkMeta identifies one chunk of an upload.
type ChunkMeta struct {
	VehicleID string
	FileName  string
	Index     int // 0-based
	Total     int // chunks of the whole file
}

// PutChunk stores one chunk and returns how many distinct chunks the upload now holds.
// Sending an index again replaces that chunk. A Total differing from the upload's earlier
// chunks is a conflict. A chunk that would take its upload past MaxUploadBytes is TooLarge,
// one that would take all unfinalized uploads past MaxPendingUploadBytes is
// InsufficientStorage; either way nothing of it is stored.
func (s *Service) PutChunk(ctx context.Context, meta ChunkMeta, data []byte) (received int, err error) {
	defer func() { err = database.Unavailable(err) }()
	if err := checkUploadID(meta.VehicleID, meta.FileName); err != nil {
		return 0, err
	}
	if err := checkTotal(meta.Total); err != nil {
		return 0, err
	}
	if meta.Index < 0 || meta.Index >= meta.Total {
		return 0, apperr.InvalidField("chunk_index", "is %d; it must be between 0 and total_chunks-1 (%d)", meta.Index, meta.Total-1)
	}
	if int64(len(data)) > s.maxChunkBytes {
		return 0, apperr.TooLarge("chunk is %d bytes; the limit is %d bytes", len(data), s.maxChunkBytes)
	}

	conn, err := database.Acquire(ctx, s.pool, s.wait, "db-conns")
	if err != nil {
		return 0, fmt.Errorf("put chunk: %w", err)
	}
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("put chunk: %w", err)
	}
	defer rollback(ctx, tx)

	// The upload row first: its lock is what keeps a chunk from changing during a finalize.
	total, err := s.q.UpsertUpload(ctx, tx, db.UpsertUploadParams{
		VehicleID: meta.VehicleID, FileName: meta.FileName, TotalChunks: int32(meta.Total),
	})
	if err != nil {
		return 0, fmt.Errorf("put chunk: upsert upload: %w", err)
	}
	if int(total) != meta.Total {
		return 0, apperr.Conflict("total_chunks is %d, but this upload was started with total_chunks %d", meta.Total, total)
	}
	stored, err := s.q.StoreUploadChunk(ctx, tx, db.StoreUploadChunkParams{
		VehicleID: meta.VehicleID, FileName: meta.FileName, ChunkIndex: int32(meta.Index), Data: data,
	})
	if err != nil {
		return 0, fmt.Errorf("put chunk: store chunk: %w", err)
	}
	n, err := s.q.CountUploadChunks(ctx, tx, db.CountUploadChunksParams{VehicleID: meta.VehicleID, FileName: meta.FileName})
	if err != nil {
		return 0, fmt.Errorf("put chunk: count chunks: %w", err)
	}
	// Last before the commit: the check may take the lock all uploads share (quota.go).
	if err := s.quota.check(ctx, s.q, tx, meta, stored); err != nil {
		return 0, fmt.Errorf("put chunk: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("put chunk: commit: %w", err)
	}
	s.metrics.ChunkBytes(int64(len(data)))
	return int(n), nil
}

// Status describes an unfinished upload.
type Status struct {
	VehicleID string
	FileName  string
	Total     int
	Received  []int // ascending, never nil
	Missing   []int // ascending, never nil
	Bytes     int64 // sum of the received chunks' sizes
}

// Status reports which chunks of an upload the server holds.
func (s *Service) Status(ctx context.Context, vehicleID, fileName string) (Status, error) {
	if err := checkUploadID(vehicleID, fileName); err != nil {
		return Status{}, err
	}
	conn, err := database.Acquire(ctx, s.pool, s.wait, "db-conns")
	if err != nil {
		return Status{}, database.Unavailable(fmt.Errorf("upload status: %w", err))
	}
	defer conn.Release()
	rows, err := s.q.UploadStatus(ctx, conn, db.UploadStatusParams{VehicleID: vehicleID, FileName: fileName})
	if err != nil {
		return Status{}, database.Unavailable(fmt.Errorf("upload status: %w", err))
	}
	if len(rows) == 0 {
		return Status{}, errUploadNotFound(vehicleID, fileName)
	}
	st := Status{
		VehicleID: vehicleID,
		FileName:  fileName,
		Total:     int(rows[0].TotalChunks),
		Received:  make([]int, 0, len(rows)),
	}
	for _, r := range rows {
		if r.ChunkIndex == nil { // the upload has no chunk: one row of nulls from the outer join
			continue
		}
		st.Received = append(st.Received, int(*r.ChunkIndex))
		st.Bytes += *r.Size
	}
	st.Missing = missing(st.Total, st.Received)
	return st, nil
}

// missing returns the indexes in 0..total-1 absent from received, which is ascending.
func missing(total int, received []int) []int {
	out := make([]int, 0, max(total-len(received), 0))
	j := 0
	for i := range total {
		if j < len(received) && received[j] == i {
			j++
			continue
		}
		out = append(out, i)
	}
	return out
}

func errUploadNotFound(vehicleID, fileName string) error {
	return apperr.NotFound(fmt.Sprintf("no upload %q for vehicle %q", fileName, vehicleID))
}

// Purge deletes the uploads that no chunk has touched for maxAge, with their chunks, and
// returns how many it deleted. Uploads being written or finalized at that moment are left
// alone. Several replicas may purge at once.
func (s *Service) Purge(ctx context.Context, maxAge time.Duration) (int64, error) {
	if maxAge <= 0 {
		return 0, fmt.Errorf("purge uploads: max age must be positive, got %v", maxAge)
	}
	n, err := s.q.PurgeUploads(ctx, s.long, maxAge.Seconds())
	if err != nil {
		return 0, fmt.Errorf("purge uploads: %w", err)
	}
	if n > 0 {
		s.metrics.UploadsPurged(n)
		s.log.InfoContext(ctx, "purged abandoned uploads", "uploads", n, "max_age", maxAge.String())
	}
	return n, nil
}

// RunPurger purges uploads older than maxAge now and then every interval, until ctx is done.
// Failures are logged and retried at the next tick.
func (s *Service) RunPurger(ctx context.Context, every, maxAge time.Duration) {
	if every <= 0 || maxAge <= 0 {
		s.log.ErrorContext(ctx, "upload purger not started: interval and max age must be positive",
			"every", every.String(), "max_age", maxAge.String())
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := s.Purge(ctx, maxAge); err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "purge abandoned uploads", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// rollback ends tx if Commit has not. It runs even when ctx is cancelled, so that a healthy
// connection goes back to the pool clean; on a broken one it fails, the pool discards the
// connection and the server aborts the transaction, so the error says nothing new.
func rollback(ctx context.Context, tx pgx.Tx) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = tx.Rollback(ctx)
}
