package records

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
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
	pool    *pgxpool.Pool     // short requests: creates, and lists, counts, retrieves, vehicles, series
	sorts   *pgxpool.Pool     // list pages that sort every matching row (sortsAll)
	export  *pgxpool.Pool     // exports, streamed at the client's pace
	standby *database.Standby // takes the reads while it keeps up; nil: none
	wait    time.Duration     // longest wait for a short request's connection
	q       *db.Queries

	seekFrom   int64 // the offset from which a vehicle's deep page seeks (see pageSQL)
	stateFrom  int64 // the offset into a shift state's rows from which its part seeks (statePartSQL)
	bandRows   int64 // tests: the rows of each of an export's bands (see bandSQL); 0: the defaults
	shiftIndex bool  // samples_shift_state_idx exists (StoreOptions.ShiftStateIndex)

	codecMu sync.Mutex
	codec   *CursorCodec // loaded from server_secrets on first use
}

// StoreOptions separate exports from short requests.
type StoreOptions struct {
	// SortPool serves the list pages no index or rollup serves (sortsAll), which read and
	// sort every matching row; nil: pool. With its own pool a few of them at once cannot
	// hold every connection short requests need.
	SortPool *pgxpool.Pool
	// ExportPool serves Stream and ExportCount; nil: pool. With its own pool a slow export
	// client holds a connection short requests never needed.
	ExportPool *pgxpool.Pool
	// AcquireTimeout bounds a short request's wait for a connection of pool, past which
	// it is a 503 (see database.Acquire); zero waits as long as the request's context.
	AcquireTimeout time.Duration
	// Standby, when set, serves every read (List, Count, ExportCount, Get, Vehicles, Series,
	// Stream) while it keeps up with the primary, on its own pools; a read it fails is asked
	// of pool or ExportPool. Create always writes to pool.
	Standby *database.Standby
	// ShiftStateIndex says the optional index samples_shift_state_idx exists
	// (db/optional/shift_state_index.sql; HasShiftStateIndex tells): pages ordered by
	// shift_state alone then read it instead of sample_hour_states (statePage).
	ShiftStateIndex bool

	seekFrom  int64 // tests: where a vehicle's deep page starts to seek; 0: seekFrom
	stateFrom int64 // tests: where a page's part of one shift state starts to seek; 0: stateSeekFrom
	bandRows  int64 // tests: the rows of each band of an export by soc or elevation; 0: growing bands
}

// HasShiftStateIndex reports whether the optional index of db/optional/shift_state_index.sql
// exists and is valid, for StoreOptions.ShiftStateIndex.
func HasShiftStateIndex(ctx context.Context, pool *pgxpool.Pool) (bool, error) {
	ok, err := db.New().HasShiftStateIndex(ctx, pool)
	if err != nil {
		return false, fmt.Errorf("look for samples_shift_state_idx: %w", err)
	}
	return ok, nil
}

// NewStore returns a Store over pool.
func NewStore(pool *pgxpool.Pool, opts StoreOptions) *Store {
	s := &Store{pool: pool, export: opts.ExportPool, standby: opts.Standby, wait: opts.AcquireTimeout, q: db.New(),
		seekFrom: opts.seekFrom, stateFrom: opts.stateFrom, bandRows: opts.bandRows, shiftIndex: opts.ShiftStateIndex}
	if s.seekFrom == 0 {
		s.seekFrom = seekFrom
	}
	if s.stateFrom == 0 {
		s.stateFrom = stateSeekFrom
	}
	if s.export == nil {
		s.export = pool
	}
	if s.sorts = opts.SortPool; s.sorts == nil {
		s.sorts = pool
	}
	return s
}

// acquire takes a connection of the primary for a short request (bounded wait; see
// StoreOptions).
func (s *Store) acquire(ctx context.Context) (*pgxpool.Conn, error) {
	return database.Acquire(ctx, s.pool, s.wait, "db-conns")
}

// lane is the kind of a read, which picks its pool.
type lane int

const (
	laneShort  lane = iota // the interactive pool
	laneSorted             // a list page that sorts every matching row: the sort pool
	laneExport             // an export's, streamed at the client's pace: the export pool
)

// read runs fn on a connection for a read of lane l: the standby's while it keeps up (and,
// for a read that must see a write, database.WithMinLSN, once it has replayed it), else the
// primary's. A read the standby fails (see database.Standby.Fallback) is asked of the
// primary, unless repeatable (nil: always) says it has sent something already.
func (s *Store) read(ctx context.Context, l lane, fn func(*pgxpool.Conn) error, repeatable func() bool) error {
	if s.standby.Usable() {
		pool := l.pick(s.standby.Interactive, s.standby.Sorts, s.standby.Export)
		err := s.readOn(ctx, pool, l, func(conn *pgxpool.Conn) error {
			if err := s.standby.AwaitReplay(ctx, conn); err != nil {
				return err // the write the read must see is not there yet
			}
			return fn(conn)
		})
		if !s.standby.Fallback(ctx, err) || (repeatable != nil && !repeatable()) {
			return err
		}
	}
	return s.readOn(ctx, l.pick(s.pool, s.sorts, s.export), l, fn)
}

// pick returns the pool of lane l among a server's three (the primary's or the standby's).
func (l lane) pick(short, sorts, export *pgxpool.Pool) *pgxpool.Pool {
	switch l {
	case laneSorted:
		return sorts
	case laneExport:
		return export
	}
	return short
}

func (s *Store) readOn(ctx context.Context, pool *pgxpool.Pool, l lane, fn func(*pgxpool.Conn) error) error {
	var conn *pgxpool.Conn
	var err error
	switch {
	case l == laneExport && pool != s.pool:
		conn, err = pool.Acquire(ctx) // the export gate keeps an export pool from filling
	case l == laneSorted && pool != s.pool:
		conn, err = database.Acquire(ctx, pool, s.wait, database.SortsSetting)
	default:
		conn, err = database.Acquire(ctx, pool, s.wait, "db-conns")
	}
	if err != nil {
		return err
	}
	defer conn.Release()
	return fn(conn)
}

// readOnly: every query of a read sees one snapshot.
var readOnly = pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}

// readTx runs fn in a read-only repeatable-read transaction of a read (see read).
func (s *Store) readTx(ctx context.Context, l lane, fn func(pgx.Tx) error) error {
	return s.read(ctx, l, func(conn *pgxpool.Conn) error {
		return pgx.BeginTxFunc(ctx, conn, readOnly, fn)
	}, nil)
}

// ListResult is one page of a listing.
type ListResult struct {
	Count      int64
	Records    []Record
	VehicleIDs []string
	// Next and Previous are cursor tokens for the neighbouring pages; empty where there is none.
	Next, Previous string
}

// ErrInvalidPage is returned for a page past the last one.
var ErrInvalidPage = apperr.NotFound("Invalid page.")

// List returns one page, the total count and every vehicle id, all from one snapshot so
// that count and page agree. With a cursor token the page is the one after (or before) the
// token's row and p.Number is ignored; without one it is page p.Number. The result's Next
// and Previous are tokens for the neighbouring pages.
func (s *Store) List(ctx context.Context, f Filter, o Order, p Page, cursor string) (ListResult, error) {
	var res ListResult
	l := laneShort
	if sortsAll(f, o, p, cursor != "") {
		l = laneSorted
	}
	err := s.read(ctx, l, func(conn *pgxpool.Conn) error {
		res = ListResult{}
		return s.list(ctx, conn, f, o, p, cursor, &res)
	}, nil)
	return res, database.Unavailable(err)
}

func (s *Store) list(ctx context.Context, conn *pgxpool.Conn, f Filter, o Order, p Page, cursor string, res *ListResult) error {
	codec, err := s.cursors(ctx, conn)
	if err != nil {
		return err
	}
	var cur *Cursor
	if cursor != "" {
		c, err := codec.Decode(cursor, f, o)
		if err != nil {
			return apperr.InvalidField("cursor", "%v", err)
		}
		cur = &c
	}
	return pgx.BeginTxFunc(ctx, conn, readOnly, func(tx pgx.Tx) error {
		vs, err := s.vehicleKeys(ctx, tx)
		if err != nil {
			return err
		}
		res.VehicleIDs = vs.ids
		sc := vs.scope(f)
		sc.shiftIndex = s.shiftIndex
		if res.Count, err = s.count(ctx, tx, sc, vs); err != nil {
			return err
		}
		// A cursor keeps the ordering as asked (its token is bound to it); the queries use the
		// one the scope leaves, which sorts the same rows the same way.
		qo := o.forScope(sc)
		var next, prev *Cursor
		switch {
		case cur != nil && !sc.none():
			next, prev, err = s.seekPage(ctx, tx, sc, qo, o, p, *cur, vs, res)
		case cur != nil:
		case p.Offset() >= res.Count && p.Number > 1:
			return ErrInvalidPage
		case res.Count > 0:
			next, prev, err = s.offsetPage(ctx, tx, sc, qo, o, p, vs, res)
		}
		if err != nil {
			return err
		}
		if next != nil {
			res.Next = codec.Encode(*next, f, o)
		}
		if prev != nil {
			res.Previous = codec.Encode(*prev, f, o)
		}
		return nil
	})
}

// vehicles is every vehicle with samples, read once per request in its snapshot: the list's
// vehicleIDs, the key of a filtered vehicle, counts without a time range, and the ids of the
// keys that list and export rows carry.
type vehicles struct {
	ids    []string
	byKey  map[int32]string
	keys   map[string]int32
	counts map[int32]int64
	spans  map[int32][2]time.Time // first and last timestamp
}

func (s *Store) vehicleKeys(ctx context.Context, tx pgx.Tx) (*vehicles, error) {
	rows, err := s.q.ListVehicleKeys(ctx, tx)
	if err != nil {
		return nil, fmt.Errorf("list vehicles: %w", err)
	}
	vs := &vehicles{
		ids: make([]string, len(rows)), byKey: make(map[int32]string, len(rows)),
		keys: make(map[string]int32, len(rows)), counts: make(map[int32]int64, len(rows)),
		spans: make(map[int32][2]time.Time, len(rows)),
	}
	for i, r := range rows {
		vs.ids[i] = r.VehicleID
		vs.byKey[r.VehicleKey] = r.VehicleID
		vs.keys[r.VehicleID] = r.VehicleKey
		vs.counts[r.VehicleKey] = r.RecordCount
		vs.spans[r.VehicleKey] = [2]time.Time{r.FirstTimestamp, r.LastTimestamp}
	}
	return vs, nil
}

func (vs *vehicles) scope(f Filter) scope {
	sc := scope{Filter: f}
	if f.VehicleID != nil {
		if k, ok := vs.keys[*f.VehicleID]; ok {
			sc.key = &k
		}
	} else {
		sc.keys = vs.allKeys()
		slices.Sort(sc.keys)
	}
	return sc
}

func (vs *vehicles) allKeys() []int32 {
	out := make([]int32, 0, len(vs.byKey))
	for k := range vs.byKey {
		out = append(out, k)
	}
	return out
}

// count is the number of samples in scope, from the per-vehicle figures without a time
// range and from the rollups with one (see countSQL): it never scans more than two minutes
// of samples per vehicle.
func (s *Store) count(ctx context.Context, tx pgx.Tx, sc scope, vs *vehicles) (int64, error) {
	var keys []int32
	switch {
	case sc.none():
		return 0, nil
	case sc.key != nil && !sc.HasTimeRange():
		return vs.counts[*sc.key], nil
	case !sc.HasTimeRange():
		var n int64
		for _, c := range vs.counts {
			n += c
		}
		return n, nil
	case sc.key != nil:
		keys = []int32{*sc.key}
	default:
		keys = vs.allKeys()
	}
	// A vehicle whose whole span lies in the range counts its record_count, one outside it
	// counts nothing: only vehicles the range cuts read rollups, those of the range when it
	// holds less than half of the vehicle's span, else those of the rest.
	var (
		n               int64
		direct, outside []int32
	)
	for _, k := range keys {
		span := vs.spans[k]
		switch {
		case (sc.From != nil && span[1].Before(*sc.From)) || (sc.To != nil && span[0].After(*sc.To)):
		case (sc.From == nil || !span[0].Before(*sc.From)) && (sc.To == nil || !span[1].After(*sc.To)):
			n += vs.counts[k]
		default:
			lo, hi := span[0], span[1]
			if sc.From != nil && sc.From.After(lo) {
				lo = *sc.From
			}
			if sc.To != nil && sc.To.Before(hi) {
				hi = *sc.To
			}
			if 2*hi.Sub(lo) > span[1].Sub(span[0]) {
				outside = append(outside, k)
				n += vs.counts[k]
			} else {
				direct = append(direct, k)
			}
		}
	}
	if len(direct)+len(outside) == 0 {
		return n, nil
	}
	sql, args := countSQL(sc, direct, outside)
	var m int64
	if err := tx.QueryRow(ctx, sql, args...).Scan(&m); err != nil {
		return 0, fmt.Errorf("count records: %w", err)
	}
	return n + m, nil
}

// cursors returns the codec, reading its key once on conn (the primary's or the standby's):
// every replica shares it through the database.
func (s *Store) cursors(ctx context.Context, conn *pgxpool.Conn) (*CursorCodec, error) {
	s.codecMu.Lock()
	defer s.codecMu.Unlock()
	if s.codec == nil {
		key, err := s.q.GetServerSecret(ctx, conn, "cursor")
		if err != nil {
			return nil, fmt.Errorf("read the cursor key: %w", err)
		}
		s.codec = NewCursorCodec(key)
	}
	return s.codec, nil
}

// offsetPage reads page p; qo is the ordering the SQL uses, o the one the cursors are made for.
func (s *Store) offsetPage(ctx context.Context, tx pgx.Tx, sc scope, qo, o Order, p Page, vs *vehicles, res *ListResult) (next, prev *Cursor, err error) {
	if sc.byVehicle(qo) {
		res.Records, err = s.vehiclePage(ctx, tx, sc, qo, p, vs)
	} else {
		res.Records, err = s.pageRows(ctx, tx, sc, qo, p, vs)
	}
	if err != nil {
		return nil, nil, err
	}
	n := len(res.Records)
	if n == 0 {
		return nil, nil, nil
	}
	if p.Offset()+int64(n) < res.Count {
		c := CursorAt(&res.Records[n-1], o, false)
		next = &c
	}
	if p.Number > 1 {
		c := CursorAt(&res.Records[0], o, true)
		prev = &c
	}
	return next, prev, nil
}

// vehiclePage is a page without a vehicle filter ordered first by vehicle_id: one vehicle's
// rows after the other's, in vehicle_id order (vs.ids, in the database's collation, as ORDER
// BY has it), each in the rest of the order. The vehicles' counts in scope say which vehicles
// hold the page's rows, and each one's part is a page of its own (pageSQL), with every index,
// seek and rollup a vehicle's page has; a sort of every row took 0.5-0.65 s at 10M rows.
func (s *Store) vehiclePage(ctx context.Context, tx pgx.Tx, sc scope, o Order, p Page, vs *vehicles) ([]Record, error) {
	ids := slices.Clone(vs.ids)
	if o[0].Desc {
		slices.Reverse(ids)
	}
	var out []Record
	skip, left := p.Offset(), p.Size
	for _, id := range ids {
		if left == 0 {
			break
		}
		k := vs.keys[id]
		one := scope{Filter: sc.Filter, key: &k, shiftIndex: sc.shiftIndex}
		one.VehicleID = &id
		n, err := s.count(ctx, tx, one, vs)
		if err != nil {
			return nil, err
		}
		if skip >= n {
			skip -= n
			continue
		}
		take := min(left, n-skip)
		recs, err := s.pageRows(ctx, tx, one, o.forScope(one), Page{Size: take, piece: true, skip: skip}, vs)
		if err != nil {
			return nil, err
		}
		out = append(out, recs...)
		left, skip = left-take, 0
	}
	return out, nil
}

// pageRows is the rows of page p in order o (not one by vehicle_id across vehicles).
func (s *Store) pageRows(ctx context.Context, tx pgx.Tx, sc scope, o Order, p Page, vs *vehicles) ([]Record, error) {
	if sc.servesStates(o) {
		return s.statePage(ctx, tx, sc, o, p, vs)
	}
	sql, args := pageSQL(sc, o, p, s.seekFrom)
	return queryRecords(ctx, tx, sql, args, vs)
}

// seekPage reads one row more than the page in the direction of travel, to know whether
// there is a page beyond; the way back is taken to exist, since the cursor came from there.
func (s *Store) seekPage(ctx context.Context, tx pgx.Tx, sc scope, qo, o Order, p Page, cur Cursor, vs *vehicles, res *ListResult) (next, prev *Cursor, err error) {
	c := cur.forOrder(o, qo)
	travel := qo
	if c.Before {
		travel = qo.reversed()
	}
	after := c
	after.Before = false // travel is already the way back
	if res.Records, err = s.seekRows(ctx, tx, sc, travel, after, p.Size+1, vs); err != nil {
		return nil, nil, err
	}
	more := int64(len(res.Records)) > p.Size
	if more {
		res.Records = res.Records[:p.Size]
	}
	if cur.Before {
		slices.Reverse(res.Records)
	}
	n := len(res.Records)
	if n == 0 {
		return nil, nil, nil
	}
	if more || cur.Before {
		c := CursorAt(&res.Records[n-1], o, false)
		next = &c
	}
	if more || !cur.Before {
		c := CursorAt(&res.Records[0], o, true)
		prev = &c
	}
	return next, prev, nil
}

// bandCuts runs bandCutsSQL: the cuts, and the farthest value of the hours in o's direction
// (meaningless without cuts: no hour reaches the scope).
func bandCuts(ctx context.Context, tx pgx.Tx, sc scope, o Order, first, growth int64, after *float64) (cuts []float64, far float64, err error) {
	sql, args := bandCutsSQL(sc, o, first, growth, after)
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	for rows.Next() {
		var cut, f float64
		if err := rows.Scan(&cut, &f); err != nil {
			return nil, 0, err
		}
		if len(cuts) == 0 || !o[0].Desc && f > far || o[0].Desc && f < far {
			far = f
		}
		cuts = append(cuts, cut)
	}
	return cuts, far, rows.Err()
}

// seekRows is the first limit rows after c (not a Before cursor) in travel order.
func (s *Store) seekRows(ctx context.Context, tx pgx.Tx, sc scope, travel Order, c Cursor, limit int64, vs *vehicles) ([]Record, error) {
	switch {
	case sc.byVehicle(travel):
		return s.vehicleSeek(ctx, tx, sc, travel, c, limit, vs)
	case sc.bandsExport(travel):
		return s.bandedSeek(ctx, tx, sc, travel, c, limit, vs)
	case sc.servesStates(travel):
		return s.stateSeek(ctx, tx, sc, travel, c, limit, vs)
	}
	return plainSeek(ctx, tx, sc, travel, c, limit, vs)
}

// plainSeek is seekRows as one query (seekSQL).
func plainSeek(ctx context.Context, tx pgx.Tx, sc scope, travel Order, c Cursor, limit int64, vs *vehicles) ([]Record, error) {
	sql, args := seekSQL(sc, travel, c, limit)
	if sql == "" {
		return nil, nil // nothing sorts after the cursor's row
	}
	return queryRecords(ctx, tx, sql, args, vs)
}

// vehicleSeek is seekRows across vehicles in an order that starts with vehicle_id, as
// vehiclePage is for offsets: the cursor's vehicle's rows after the cursor, then the next
// vehicles' first rows, each part that vehicle's own seek or page in the rest of the order,
// with every index, band and rollup a vehicle's pages have. One seek of every vehicle's rows
// sorted them all: 0.37-2.5 s at 10M rows (bench-list, cursor pages by vehicle_id).
func (s *Store) vehicleSeek(ctx context.Context, tx pgx.Tx, sc scope, travel Order, c Cursor, limit int64, vs *vehicles) ([]Record, error) {
	ids := slices.Clone(vs.ids) // the database's collation, as ORDER BY has it
	if travel[0].Desc {
		slices.Reverse(ids)
	}
	at, _ := c.Key[0].(string)
	i := slices.Index(ids, at)
	if i < 0 { // the cursor's vehicle is gone: where it sorted only the database can say
		return plainSeek(ctx, tx, sc, travel, c, limit, vs)
	}
	var out []Record
	for j, id := range ids[i:] {
		left := limit - int64(len(out))
		if left == 0 {
			break
		}
		k := vs.keys[id]
		one := scope{Filter: sc.Filter, key: &k, shiftIndex: sc.shiftIndex}
		one.VehicleID = &id
		rest := travel.forScope(one)
		var recs []Record
		var err error
		if j == 0 {
			recs, err = s.seekRows(ctx, tx, one, rest, c.forOrder(travel, rest), left, vs)
		} else {
			recs, err = s.pageRows(ctx, tx, one, rest, Page{Size: left, piece: true}, vs)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, recs...)
	}
	return out, nil
}

// bandedSeek is the first limit rows after c in travel order, which starts with soc or
// elevation, of a vehicle or of up to mergeMaxVehicles: no index holds the rows in that
// order, and a plain seek sorted every row after the cursor. The rows are read in bands of
// values, as an export's are (bandSQL), until limit rows have come: the cursor's value's
// first (in an order of that field alone, by id: seekTieSQL), the next ones a few units each
// (bandsAfter), then about bandGrowth times as many rows each by the hour rollup's count, up
// to the farthest value of the hours (the last page of a walk by soc: 36 ms before it
// stopped there, 10 ms). At 10M rows, the page of 100 after page 1 or page 1000 (curl, median
// of 5): one vehicle's 0.45-1.1 s before, 9-78 ms; all ten vehicles' 1.0-3.4 s before,
// 14-73 ms.
func (s *Store) bandedSeek(ctx context.Context, tx pgx.Tx, sc scope, travel Order, c Cursor, limit int64, vs *vehicles) ([]Record, error) {
	var v float64
	switch k := c.Key[0].(type) {
	case int64:
		v = float64(k)
	case float64:
		v = k
	default:
		return nil, fmt.Errorf("list records: a cursor value of type %T for %s", k, travel[0].Field)
	}
	// Ordered by the field alone, the ties are in id order, read as such first: a page that
	// they fill needs no bands (nor their cuts, 16 ms of a fleet's hours). Else the first band
	// holds them.
	var (
		out []Record
		err error
	)
	withTies := len(travel) > 1 // the first band holds the ties
	if !withTies {
		sql, args := seekTieSQL(sc, travel, c, v, limit)
		if out, err = queryRecords(ctx, tx, sql, args, vs); err != nil || int64(len(out)) >= limit {
			return out, err
		}
	}
	// The cut bands start at a page or two of rows by the hours' count (an export's first band,
	// firstBandRows, is ten times that: it is read once, a cursor page's on every page).
	first, growth := max(limit, firstBandRows/10), int64(bandGrowth)
	if s.bandRows > 0 {
		first, growth = s.bandRows, 1
	}
	cuts, far, err := bandCuts(ctx, tx, sc, travel, first, growth, &v)
	if err != nil {
		return nil, fmt.Errorf("list bands: %w", err)
	}
	if len(cuts) == 0 {
		return out, nil // no hour reaches the cursor's value or beyond
	}
	desc := travel[0].Desc
	for _, b := range bandsAfter(cuts, v, desc, withTies) {
		// Past the farthest value of the hours nothing is left: the last page of a walk asks
		// for more rows than there are, and each empty band cost a read of the hours.
		if !desc && b[0] > far || desc && b[1] <= far {
			break
		}
		sql, args := seekBandSQL(sc, travel, c, b[0], b[1], limit-int64(len(out)))
		if sql == "" {
			break
		}
		recs, err := queryRecords(ctx, tx, sql, args, vs)
		if err != nil {
			return nil, err
		}
		if out = append(out, recs...); int64(len(out)) >= limit {
			break
		}
	}
	return out, nil
}

func queryRecords(ctx context.Context, tx pgx.Tx, sql string, args []any, vs *vehicles) ([]Record, error) {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("list records: %w", err)
	}
	defer rows.Close()
	var out []Record
	var key int32
	for rows.Next() {
		var r Record
		if err := rows.Scan(&r.ID, &key, &r.Timestamp, &r.Speed, &r.Odometer, &r.SOC, &r.Elevation, &r.ShiftState); err != nil {
			return nil, fmt.Errorf("list records: %w", err)
		}
		r.VehicleID, r.Timestamp = vs.byKey[key], r.Timestamp.UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list records: %w", err)
	}
	return out, nil
}

// Count returns the number of records matching f (see count).
func (s *Store) Count(ctx context.Context, f Filter) (int64, error) {
	return s.countOn(ctx, laneShort, f)
}

// ExportCount is Count on the export's pool: an export that must know its size first (XLSX)
// spends its own connection budget, not short requests'.
func (s *Store) ExportCount(ctx context.Context, f Filter) (int64, error) {
	return s.countOn(ctx, laneExport, f)
}

func (s *Store) countOn(ctx context.Context, l lane, f Filter) (int64, error) {
	var n int64
	err := s.readTx(ctx, l, func(tx pgx.Tx) error {
		vs, err := s.vehicleKeys(ctx, tx)
		if err != nil {
			return err
		}
		n, err = s.count(ctx, tx, vs.scope(f), vs)
		return err
	})
	return n, database.Unavailable(err)
}

// Get returns one record by id.
func (s *Store) Get(ctx context.Context, id int64) (Record, error) {
	var r Record
	err := s.read(ctx, laneShort, func(conn *pgxpool.Conn) error {
		row, err := s.q.GetVehicleData(ctx, conn, id)
		if errors.Is(err, pgx.ErrNoRows) {
			return apperr.NotFound("Not found.")
		}
		if err != nil {
			return fmt.Errorf("get record %d: %w", id, err)
		}
		r = fromRow(row)
		return nil
	}, nil)
	return r, database.Unavailable(err)
}

// Create stores r (its ID is ignored) and returns it as stored, with the primary's WAL
// position after it (see database.WriteLSN; 0 when it could not be read, the record being
// stored all the same).
func (s *Store) Create(ctx context.Context, r Record) (Record, database.LSN, error) {
	conn, err := s.acquire(ctx)
	if err != nil {
		return Record{}, 0, database.Unavailable(err)
	}
	defer conn.Release()
	row, err := s.q.CreateVehicleData(ctx, conn, db.CreateVehicleDataParams{
		VehicleID:  r.VehicleID,
		Timestamp:  r.Timestamp,
		Speed:      r.Speed,
		Odometer:   r.Odometer,
		Soc:        r.SOC,
		Elevation:  r.Elevation,
		ShiftState: r.ShiftState,
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return Record{}, 0, apperr.Conflict("a record for vehicle %q at %s already exists",
			r.VehicleID, r.Timestamp.UTC().Format(time.RFC3339Nano))
	}
	if err != nil {
		return Record{}, 0, database.Unavailable(fmt.Errorf("create record: %w", err))
	}
	lsn, _ := database.WriteLSN(ctx, conn)
	return fromRow(db.GetVehicleDataRow(row)), lsn, nil
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
	var out []Vehicle
	err := s.read(ctx, laneShort, func(conn *pgxpool.Conn) error {
		rows, err := s.q.ListVehicles(ctx, conn)
		if err != nil {
			return fmt.Errorf("list vehicles: %w", err)
		}
		out = make([]Vehicle, len(rows))
		for i, r := range rows {
			out[i] = Vehicle{VehicleID: r.VehicleID, Count: r.RecordCount, First: r.FirstTimestamp.UTC(), Last: r.LastTimestamp.UTC()}
		}
		return nil
	}, nil)
	return out, database.Unavailable(err)
}

// Stream calls fn for every record matching f in order o, read from one read-only
// snapshot. The *Record passed to fn is reused between calls. fn's error stops the scan.
// A standby that fails the export before its first row hands it to the primary; after
// that, the error ends it.
func (s *Store) Stream(ctx context.Context, f Filter, o Order, fn func(*Record) error) error {
	sent := false
	err := s.read(ctx, laneExport, func(conn *pgxpool.Conn) error {
		return pgx.BeginTxFunc(ctx, conn, readOnly, func(tx pgx.Tx) error {
			return s.stream(ctx, tx, f, o, func(r *Record) error {
				sent = true
				return fn(r)
			})
		})
	}, func() bool { return !sent })
	return database.Unavailable(err)
}

func (s *Store) stream(ctx context.Context, tx pgx.Tx, f Filter, o Order, fn func(*Record) error) error {
	vs, err := s.vehicleKeys(ctx, tx)
	if err != nil {
		return err
	}
	sc := vs.scope(f)
	if sc.none() {
		return nil
	}
	// Rows go out as they are read: a plan that starts at once (the index in the export's
	// order) beats one that sorts first, and JIT and parallel workers only delay the first
	// row of a streamed scan. See README, "Performance".
	if _, err := tx.Exec(ctx, exportSettings); err != nil {
		return fmt.Errorf("export settings: %w", err)
	}
	o = o.forScope(sc)
	if !sc.bandsExport(o) {
		sql, args := selectSQL(sc, o)
		return streamRows(ctx, tx, vs, sql, args, fn)
	}
	first, growth, most := int64(firstBandRows), int64(bandGrowth), rollupBands+1
	if s.bandRows > 0 {
		first, growth, most = s.bandRows, 1, math.MaxInt
	}
	cuts, _, err := bandCuts(ctx, tx, sc, o, first, growth, nil)
	if err != nil {
		return fmt.Errorf("export bands: %w", err)
	}
	bands := bandsFrom(cuts[:min(len(cuts), most)], o[0].Desc)
	for i, b := range bands {
		sql, args := bandSQL(sc, o, b[0], b[1], i == len(bands)-1)
		if err := streamRows(ctx, tx, vs, sql, args, fn); err != nil {
			return err
		}
	}
	return nil
}

// streamRows calls fn for every row of the export query sql.
func streamRows(ctx context.Context, tx pgx.Tx, vs *vehicles, sql string, args []any, fn func(*Record) error) error {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("export query: %w", err)
	}
	defer rows.Close()
	var (
		r     Record
		key   int32
		speed pgtype.Float8 // scanned by value: no allocation per row
		shift pgtype.Text
	)
	for rows.Next() {
		if err := rows.Scan(&r.ID, &key, &r.Timestamp, &speed, &r.Odometer, &r.SOC, &r.Elevation, &shift); err != nil {
			return fmt.Errorf("export scan: %w", err)
		}
		r.VehicleID = vs.byKey[key]
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
}

// exportSettings are the export transaction's planner settings (SET LOCAL: they end with it).
const exportSettings = `SELECT set_config('jit', 'off', true), set_config('max_parallel_workers_per_gather', '0', true),
	set_config('enable_sort', 'off', true)`

func fromRow(r db.GetVehicleDataRow) Record {
	return Record{
		ID: r.ID, VehicleID: r.VehicleID, Timestamp: r.Timestamp.UTC(), Speed: r.Speed,
		Odometer: r.Odometer, SOC: r.Soc, Elevation: r.Elevation, ShiftState: r.ShiftState,
	}
}
