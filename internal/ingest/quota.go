package ingest

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/vehicle-data/vehicle-data/gen/db"
	"github.com/vehicle-data/vehicle-data/internal/apperr"
	"github.com/vehicle-data/vehicle-data/internal/config"
)

// quota bounds the bytes of unfinalized uploads: each one's (413 above), and all of them
// together (507 above).
//
// The source of truth is the database, never a counter in the process, so the bounds hold
// across replicas. Each upload row carries its chunks' bytes (migration 00005), kept by the
// statement that stores a chunk. The per-upload check needs nothing more: the upload's row
// lock already makes its chunks arrive one at a time. The total needs one lock for all
// uploads: a chunk that adds bytes takes a transaction-level advisory lock after its (large)
// insert, then sums the uploads' bytes, then commits or rolls back, which releases the lock.
// Whoever held the lock before has committed (or rolled back) by then, and under READ
// COMMITTED the sum, a new statement, sees it; chunks that have not yet taken the lock are not
// counted, but they will count this one. Only the sum (about 0.1 ms: one row per upload) and the commit (with its WAL
// flush) run under the lock, so concurrent chunks still write their data in parallel, but
// chunks that add bytes commit one at a time. Finalizes and purges only lower the sum and
// take no part.
type quota struct {
	perUpload int64
	pending   int64
}

func newQuota(perUpload, pending int64) quota {
	q := quota{perUpload: perUpload, pending: pending}
	if q.perUpload == 0 {
		q.perUpload = config.Default().MaxUploadBytes
	}
	if q.pending == 0 {
		q.pending = config.Default().MaxPendingUploadBytes
	}
	if q.perUpload < 1 || q.pending < 1 {
		// config.Validate rejects such a setting; reaching here is a caller's bug.
		panic(fmt.Sprintf("ingest: upload quotas must be positive, got MaxUploadBytes %d, MaxPendingUploadBytes %d", q.perUpload, q.pending))
	}
	return q
}

// check runs in tx right after the chunk was stored, and returns an apperr error when the
// chunk takes its upload or all uploads past their limit; the caller then rolls tx back,
// so nothing of the chunk stays. A chunk that adds nothing (a re-sent index of the same size
// or smaller) is always accepted: it cannot take anything past a limit it was not past
// before, and it does not wait for the lock.
func (q quota) check(ctx context.Context, queries *db.Queries, tx pgx.Tx, meta ChunkMeta, stored db.StoreUploadChunkRow) error {
	if stored.Added <= 0 {
		return nil
	}
	if stored.Bytes > q.perUpload {
		return apperr.TooLarge("upload %q of vehicle %q would hold %d bytes, more than the limit of %d bytes per upload (max-upload-bytes)",
			meta.FileName, meta.VehicleID, stored.Bytes, q.perUpload)
	}
	if err := queries.LockUploadQuota(ctx, tx); err != nil {
		return fmt.Errorf("lock upload quota: %w", err)
	}
	pending, err := queries.PendingUploadBytes(ctx, tx)
	if err != nil {
		return fmt.Errorf("sum pending upload bytes: %w", err)
	}
	if pending > q.pending {
		return apperr.InsufficientStorage("chunk %d of upload %q of vehicle %q would bring all unfinalized uploads to %d bytes, more than the limit of %d bytes (max-pending-upload-bytes); "+
			"the chunk was not stored: try again once uploads are finalized or expire", meta.Index, meta.FileName, meta.VehicleID, pending, q.pending)
	}
	return nil
}
