package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vehicle-data/vehicle-data/gen/db"
	"github.com/vehicle-data/vehicle-data/internal/apperr"
	"github.com/vehicle-data/vehicle-data/internal/csvrows"
)

// The file side of a finalize: chunkReader streams the stored chunks as one file, rowSource
// turns it into the valid rows a COPY takes, and stage runs that COPY.

// stage streams the file's valid rows into the staging table and returns what it counted.
// Without SkipInvalid, an invalid row ends the COPY and the rest of the file is only read to
// count and report; the result is then a *RowsInvalidError.
func (s *Service) stage(ctx context.Context, tx pgx.Tx, readConn *pgxpool.Conn, req FinalizeRequest, chunkList []db.ListUploadChunksRow) (*rowSource, error) {
	src, err := s.newRowSource(ctx, readConn, req, chunkList)
	if err != nil {
		return nil, err
	}
	_, err = tx.CopyFrom(ctx, pgx.Identifier{stagingTable}, stagingColumns, src)
	return src, src.finish(err)
}

// copyDirect streams the file's valid rows straight into samples when none of them can be a
// duplicate: the common file, a vehicle's log newer (or older) than everything stored. It skips
// the staging table, its sort and the anti-join, about a quarter of a finalize. ok is false, with
// everything it did rolled back, for any other file: a row inside the span of the vehicle's
// stored rows ends the COPY at once (at the first row for a file uploaded twice), and a
// timestamp that comes twice in the file, or that another insert stores meanwhile, fails it with
// unique_violation (or, when both wait for each other, deadlock_detected). Rows go in in file
// order, so a file's few rows out of order get their ids in that order. Otherwise the results
// are stage's (a *RowsInvalidError, a 400) and the rows inserted.
func (s *Service) copyDirect(ctx context.Context, tx pgx.Tx, readConn *pgxpool.Conn, req FinalizeRequest, chunkList []db.ListUploadChunksRow) (src *rowSource, inserted int64, ok bool, err error) {
	sp, err := tx.Begin(ctx) // a savepoint: a failed attempt leaves nothing behind, not even a new vehicle
	if err != nil {
		return nil, 0, false, err
	}
	defer rollback(ctx, sp)
	key, err := s.q.EnsureVehicleKey(ctx, sp, req.VehicleID)
	if err != nil {
		return nil, 0, false, fmt.Errorf("finalize: vehicle key: %w", err)
	}
	if src, err = s.newRowSource(ctx, readConn, req, chunkList); err != nil {
		return nil, 0, false, err
	}
	src.direct, src.key = true, key
	switch v, err := s.q.GetVehicle(ctx, sp, req.VehicleID); {
	case err == nil:
		src.storedFirst, src.storedLast = v.FirstTimestamp, v.LastTimestamp
	case !errors.Is(err, pgx.ErrNoRows):
		return nil, 0, false, fmt.Errorf("finalize: vehicle span: %w", err)
	}
	inserted, err = sp.CopyFrom(ctx, pgx.Identifier{"samples"}, directColumns, src)
	var pgErr *pgconn.PgError
	// A deadlock can only be with another insert of the same vehicle's timestamps: the staged
	// path inserts in timestamp order and skips what the other committed.
	if errors.Is(src.err, errMayDuplicate) || errors.As(err, &pgErr) && (pgErr.Code == codeUniqueViolation || pgErr.Code == codeDeadlockDetected) {
		return nil, 0, false, sp.Rollback(ctx)
	}
	if err := src.finish(err); err != nil {
		return nil, 0, false, err
	}
	if inserted == 0 {
		return src, 0, true, sp.Rollback(ctx) // keeps no new vehicle without rows
	}
	return src, inserted, true, sp.Commit(ctx) // releases the savepoint
}

// errMayDuplicate ends a direct COPY at a row inside the span of the vehicle's stored rows.
var errMayDuplicate = errors.New("a row within the span of the stored rows")

func (s *Service) newRowSource(ctx context.Context, readConn *pgxpool.Conn, req FinalizeRequest, chunkList []db.ListUploadChunksRow) (*rowSource, error) {
	chunks := &chunkReader{ctx: ctx, conn: readConn, q: s.q, vehicleID: req.VehicleID, fileName: req.FileName, chunks: chunkList}
	rows := csvrows.NewReader(chunks, req.VehicleID)
	if err := rows.ReadHeader(); err != nil {
		return nil, fileError(err)
	}
	return &rowSource{
		rows:        rows,
		skipInvalid: req.SkipInvalid,
		values:      make([]any, len(stagingColumns)),
		errs:        []csvrows.RowError{}, // empty, not nil, in results
	}, nil
}

// finish turns the COPY's outcome into the finalize's: the file's fault is a 400, and without
// SkipInvalid an invalid row makes the rest of the file be read to count and report.
func (src *rowSource) finish(copyErr error) error {
	if copyErr != nil {
		if src.err != nil { // the file, not the COPY, failed
			return fileError(src.err)
		}
		return fmt.Errorf("finalize: copy rows: %w", copyErr)
	}
	if src.invalid > 0 && !src.skipInvalid {
		// A malformed file is still a 400, whatever rows came before the fault.
		if err := src.drain(); err != nil {
			return fileError(err)
		}
		return &RowsInvalidError{Invalid: src.invalid, Errors: src.errs}
	}
	return nil
}

// fileError turns what the CSV reader says about the file into a 400; anything else (a
// failed chunk read, a cancelled context) stays an internal error.
func fileError(err error) error {
	var herr *csvrows.HeaderError
	var ferr *csvrows.FormatError
	switch {
	case errors.As(err, &herr):
		return apperr.Invalid("CSV header: " + herr.Error())
	case errors.As(err, &ferr):
		return apperr.Invalid(ferr.Error())
	}
	return fmt.Errorf("finalize: read file: %w", err)
}

// partBytes is how much of a chunk one read fetches. It bounds a finalize's memory whatever
// the chunk size; at 256 KiB the extra round trips cost well under 1% of a finalize.
const partBytes = 256 << 10

// chunkReader reads an upload's chunks in index order as one stream, fetching each part only
// when the previous one is used up. It keeps ctx because io.Reader's Read has none.
type chunkReader struct {
	ctx       context.Context
	conn      *pgxpool.Conn
	q         *db.Queries
	vehicleID string
	fileName  string
	chunks    []db.ListUploadChunksRow // every chunk, in index order
	cur       int                      // position in chunks of the chunk being read
	off       int64                    // bytes of the current chunk fetched so far
	rest      []byte                   // fetched and not yet read
}

func (r *chunkReader) Read(p []byte) (int, error) {
	for len(r.rest) == 0 {
		if r.cur == len(r.chunks) {
			return 0, io.EOF
		}
		c := r.chunks[r.cur]
		if r.off >= c.Size { // a loop, not a recursion: chunks may be empty
			r.cur, r.off = r.cur+1, 0
			continue
		}
		n := min(partBytes, c.Size-r.off)
		part, err := r.q.ReadUploadChunkPart(r.ctx, r.conn, db.ReadUploadChunkPartParams{
			VehicleID: r.vehicleID, FileName: r.fileName, ChunkIndex: c.ChunkIndex,
			Start: int32(r.off + 1), Length: int32(n),
		})
		if err != nil {
			return 0, fmt.Errorf("read chunk %d: %w", c.ChunkIndex, err)
		}
		if int64(len(part)) != n {
			// Cannot happen while the upload row is locked; say so rather than read garbage.
			return 0, fmt.Errorf("read chunk %d: got %d bytes at offset %d, want %d: the chunk changed during finalize", c.ChunkIndex, len(part), r.off, n)
		}
		r.rest, r.off = part, r.off+n
	}
	n := copy(p, r.rest)
	r.rest = r.rest[n:]
	return n, nil
}

// rowSource feeds the valid rows of a file to CopyFrom one at a time and counts the rest.
// Without skipInvalid it ends the COPY at the first invalid row: the transaction will be
// rolled back, so copying more would be wasted.
type rowSource struct {
	rows        *csvrows.Reader
	skipInvalid bool
	values      []any // reused for every row: CopyFrom encodes the row before asking for the next
	// direct feeds samples (directColumns, the vehicle's key first) and stops at the first
	// row within [storedFirst, storedLast] (when the vehicle has rows); otherwise the staging
	// table (stagingColumns).
	direct                  bool
	key                     int32
	storedFirst, storedLast time.Time

	valid, invalid int64
	first, last    time.Time // bounds of the valid rows' timestamps
	errs           []csvrows.RowError
	err            error // the file's fault (malformed CSV) or a read failure
}

// nextValid advances to the next valid row. It returns false at the end, on an error (in s.err),
// or, without skipInvalid, after the first invalid row.
func (s *rowSource) nextValid() (csvrows.Row, bool) {
	for {
		row, rowErr, err := s.rows.Next()
		switch {
		case err == io.EOF:
			return csvrows.Row{}, false
		case err != nil:
			s.err = err
			return csvrows.Row{}, false
		case rowErr != nil:
			s.noteInvalid(rowErr)
			if !s.skipInvalid {
				return csvrows.Row{}, false
			}
		default:
			if s.direct && !s.storedFirst.IsZero() && !row.Timestamp.Before(s.storedFirst) && !row.Timestamp.After(s.storedLast) {
				s.err = errMayDuplicate
				return csvrows.Row{}, false
			}
			if s.valid == 0 || row.Timestamp.Before(s.first) {
				s.first = row.Timestamp
			}
			if s.valid == 0 || row.Timestamp.After(s.last) {
				s.last = row.Timestamp
			}
			s.valid++
			return row, true
		}
	}
}

// drain reads the rest of the file to count its invalid rows. It returns a malformed-file
// or read error.
func (s *rowSource) drain() error {
	for {
		_, rowErr, err := s.rows.Next()
		switch {
		case err == io.EOF:
			return nil
		case err != nil:
			return err
		case rowErr != nil:
			s.noteInvalid(rowErr)
		default:
			s.valid++
		}
	}
}

// noteInvalid counts an invalid row and keeps the first MaxReportedErrors for the report, so
// memory does not grow with the number of bad rows.
func (s *rowSource) noteInvalid(e *csvrows.RowError) {
	s.invalid++
	if len(s.errs) < MaxReportedErrors {
		s.errs = append(s.errs, *e)
	}
}

// Next, Values and Err implement pgx.CopyFromSource.
func (s *rowSource) Next() bool {
	row, ok := s.nextValid()
	if !ok {
		return false
	}
	v := s.values
	v[0] = int32(row.Line)
	if s.direct {
		v[0] = s.key
	}
	v[1] = row.Timestamp
	v[2] = nil
	if row.SpeedValid {
		v[2] = row.Speed
	}
	v[3] = row.Odometer
	v[4] = row.SOC
	v[5] = row.Elevation
	v[6] = nil
	if row.ShiftStateValid {
		v[6] = row.ShiftState
	}
	return true
}

func (s *rowSource) Values() ([]any, error) { return s.values, nil }

func (s *rowSource) Err() error { return s.err }
