package records

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vehicle-data/vehicle-data/gen/db"
	"github.com/vehicle-data/vehicle-data/internal/apperr"
	"github.com/vehicle-data/vehicle-data/internal/database"
)

// Store reads and writes records.
type Store struct {
	pool *pgxpool.Pool
	q    *db.Queries
}

// NewStore returns a Store over pool.
func NewStore(pool *pgxpool.Pool) *Store {
	return &Store{pool: pool, q: db.New()}
}

// ListResult is one page of a listing.
type ListResult struct {
	Count      int64
	Records    []Record
	VehicleIDs []string
}

// ErrInvalidPage is returned for a page past the last one.
var ErrInvalidPage = apperr.NotFound("Invalid page.")

// List returns one page, the total count and every vehicle id, all from one snapshot so
// that count and page agree.
func (s *Store) List(ctx context.Context, f Filter, o Order, p Page) (ListResult, error) {
	var res ListResult
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var err error
		if res.Count, err = s.count(ctx, tx, f); err != nil {
			return err
		}
		if p.Offset() >= res.Count && p.Number > 1 {
			return ErrInvalidPage
		}
		if res.Count > 0 {
			sql, args := selectSQL(f, o)
			args = append(args, p.Size, p.Offset())
			sql += fmt.Sprintf(" LIMIT $%d OFFSET $%d", len(args)-1, len(args))
			rows, err := tx.Query(ctx, sql, args...)
			if err != nil {
				return fmt.Errorf("list records: %w", err)
			}
			res.Records, err = pgx.CollectRows(rows, scanRecord)
			if err != nil {
				return fmt.Errorf("list records: %w", err)
			}
		}
		res.VehicleIDs, err = s.q.ListVehicleIDs(ctx, tx)
		if err != nil {
			return fmt.Errorf("list vehicle ids: %w", err)
		}
		return nil
	})
	return res, database.Unavailable(err)
}

// Count returns the number of records matching f, scanning vehicle_data only where the
// per-vehicle figures cannot answer (see countSQL).
func (s *Store) Count(ctx context.Context, f Filter) (int64, error) {
	n, err := s.count(ctx, s.pool, f)
	return n, database.Unavailable(err)
}

func (s *Store) count(ctx context.Context, dbtx db.DBTX, f Filter) (int64, error) {
	switch {
	case !f.HasTimeRange() && f.VehicleID == nil:
		return s.q.CountAllRecords(ctx, dbtx)
	case !f.HasTimeRange():
		return s.q.CountVehicleRecords(ctx, dbtx, *f.VehicleID)
	}
	sql, args := countSQL(f)
	var n int64
	if err := dbtx.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count records: %w", err)
	}
	return n, nil
}

// Get returns one record by id.
func (s *Store) Get(ctx context.Context, id int64) (Record, error) {
	row, err := s.q.GetVehicleData(ctx, s.pool, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return Record{}, apperr.NotFound("Not found.")
	}
	if err != nil {
		return Record{}, database.Unavailable(fmt.Errorf("get record %d: %w", id, err))
	}
	return fromRow(row), nil
}

// Create stores r (its ID is ignored) and returns it as stored.
func (s *Store) Create(ctx context.Context, r Record) (Record, error) {
	row, err := s.q.CreateVehicleData(ctx, s.pool, db.CreateVehicleDataParams{
		VehicleID:  r.VehicleID,
		Timestamp:  r.Timestamp,
		Speed:      r.Speed,
		Odometer:   r.Odometer,
		Soc:        r.SOC,
		Elevation:  r.Elevation,
		ShiftState: r.ShiftState,
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return Record{}, apperr.Conflict("a record for vehicle %q at %s already exists",
			r.VehicleID, r.Timestamp.UTC().Format(time.RFC3339Nano))
	}
	if err != nil {
		return Record{}, database.Unavailable(fmt.Errorf("create record: %w", err))
	}
	return fromRow(row), nil
}

// Vehicle is one vehicle's figures.
type Vehicle struct {
	VehicleID string
	Count     int64
	First     time.Time
	Last      time.Time
}

// Vehicles returns every vehicle's figures, sorted by id, without scanning records.
func (s *Store) Vehicles(ctx context.Context) ([]Vehicle, error) {
	rows, err := s.q.ListVehicles(ctx, s.pool)
	if err != nil {
		return nil, database.Unavailable(fmt.Errorf("list vehicles: %w", err))
	}
	out := make([]Vehicle, len(rows))
	for i, r := range rows {
		out[i] = Vehicle{VehicleID: r.VehicleID, Count: r.RecordCount, First: r.FirstTimestamp.UTC(), Last: r.LastTimestamp.UTC()}
	}
	return out, nil
}

// Stream calls fn for every record matching f in order o, read from one read-only
// snapshot. The *Record passed to fn is reused between calls. fn's error stops the scan.
func (s *Store) Stream(ctx context.Context, f Filter, o Order, fn func(*Record) error) error {
	return database.Unavailable(s.stream(ctx, f, o, fn))
}

func (s *Store) stream(ctx context.Context, f Filter, o Order, fn func(*Record) error) error {
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		sql, args := selectSQL(f, o)
		rows, err := tx.Query(ctx, sql, args...)
		if err != nil {
			return fmt.Errorf("export query: %w", err)
		}
		defer rows.Close()
		var (
			r     Record
			speed pgtype.Float8 // scanned by value: no allocation per row
			shift pgtype.Text
		)
		for rows.Next() {
			if err := rows.Scan(&r.ID, &r.VehicleID, &r.Timestamp, &speed, &r.Odometer, &r.SOC, &r.Elevation, &shift); err != nil {
				return fmt.Errorf("export scan: %w", err)
			}
			r.Timestamp = r.Timestamp.UTC()
			r.Speed, r.ShiftState = nil, nil
			if speed.Valid {
				r.Speed = &speed.Float64
			}
			if shift.Valid {
				r.ShiftState = &shift.String
			}
			if err := fn(&r); err != nil {
				return err
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("export rows: %w", err)
		}
		return nil
	})
}

func scanRecord(row pgx.CollectableRow) (Record, error) {
	var r Record
	err := row.Scan(&r.ID, &r.VehicleID, &r.Timestamp, &r.Speed, &r.Odometer, &r.SOC, &r.Elevation, &r.ShiftState)
	r.Timestamp = r.Timestamp.UTC()
	return r, err
}

func fromRow(r db.Record) Record {
	return Record{
		ID: r.ID, VehicleID: r.VehicleID, Timestamp: r.Timestamp.UTC(), Speed: r.Speed,
		Odometer: r.Odometer, SOC: r.Soc, Elevation: r.Elevation, ShiftState: r.ShiftState,
	}
}
