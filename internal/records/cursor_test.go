package records

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vehicle-data/vehicle-data/db/optional"
	"github.com/vehicle-data/vehicle-data/internal/testdb"
)

func TestCursorCodec(t *testing.T) {
	cc := NewCursorCodec([]byte("0123456789abcdef0123456789abcdef"))
	v := "veh1"
	from := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	f := Filter{VehicleID: &v, From: &from}
	o := Order{{Field: "speed", Desc: true}, {Field: "shift_state"}, {Field: "timestamp"}}
	c := Cursor{Before: true, ID: 42, Key: []any{nil, "D", time.Date(2024, 6, 1, 12, 0, 1, 123456000, time.UTC)}}
	tok := cc.Encode(c, f, o)

	got, err := cc.Decode(tok, f, o)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if got.Before != c.Before || got.ID != c.ID || fmt.Sprint(got.Key) != fmt.Sprint(c.Key) {
		t.Fatalf("Decode = %+v, want %+v", got, c)
	}
	// The same instant written in another zone is the same filter.
	sameFrom := from.In(time.FixedZone("x", 7200))
	if _, err := cc.Decode(tok, Filter{VehicleID: &v, From: &sameFrom}, o); err != nil {
		t.Errorf("same filter, other zone: %v", err)
	}

	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	flipped := slices.Clone(raw)
	flipped[3] ^= 1
	other := "veh2"
	later := from.Add(time.Microsecond)
	bad := map[string]struct {
		tok string
		f   Filter
		o   Order
	}{
		"empty":           {"", f, o},
		"not base64":      {"!!!", f, o},
		"short":           {tok[:10], f, o},
		"altered payload": {base64.RawURLEncoding.EncodeToString(flipped), f, o},
		"other vehicle":   {tok, Filter{VehicleID: &other, From: &from}, o},
		"no vehicle":      {tok, Filter{From: &from}, o},
		"other bound":     {tok, Filter{VehicleID: &v, From: &later}, o},
		"other ordering":  {tok, f, Order{{Field: "speed"}, {Field: "shift_state"}, {Field: "timestamp"}}},
		"fewer fields":    {tok, f, Order{{Field: "speed", Desc: true}}},
		"other key":       {NewCursorCodec([]byte("another key of sixteen+ bytes")).Encode(c, f, o), f, o},
		"padding added":   {tok + "==", f, o},
	}
	for name, tt := range bad {
		t.Run(name, func(t *testing.T) {
			if got, err := cc.Decode(tt.tok, tt.f, tt.o); err == nil {
				t.Errorf("Decode accepted it: %+v", got)
			}
		})
	}
}

// seedCursorRows inserts rows full of ties and nulls: few distinct values per column, so
// that every ordering leans on the id tie-break and on the null rules.
func seedCursorRows(t *testing.T, pool *pgxpool.Pool, n int, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	rows := make([][]any, n)
	for i := range rows {
		var speed, shift any
		if rng.IntN(4) > 0 {
			speed = float64(rng.IntN(5)) * 10
		}
		if rng.IntN(3) > 0 {
			shift = []string{"D", "N", "P", "R"}[rng.IntN(4)]
		}
		rows[i] = []any{
			fmt.Sprintf("v%d", rng.IntN(3)),
			base.Add(time.Duration(i)*time.Second + time.Duration(rng.IntN(1000))*time.Microsecond),
			speed, float64(rng.IntN(6)), int16(rng.IntN(4) * 25), float64(rng.IntN(3)) - 1, shift,
		}
	}
	_, err := pool.CopyFrom(t.Context(), pgx.Identifier{"vehicle_data"},
		[]string{"vehicle_id", "timestamp", "speed", "odometer", "soc", "elevation", "shift_state"}, pgx.CopyFromRows(rows))
	if err != nil {
		t.Fatal(err)
	}
}

// allIDs is the oracle: every matching id in order, from one unpaged ORDER BY.
func allIDs(t *testing.T, pool *pgxpool.Pool, f Filter, o Order) []int64 {
	t.Helper()
	w, args := viewWhere(f)
	rows, err := pool.Query(t.Context(), "SELECT id FROM vehicle_data"+w+o.orderBy(false), args...)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func ids(rs []Record) []int64 {
	out := make([]int64, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

// Walking the cursors forward from page 1 and back from the last page must visit every
// matching row exactly once, in the order of an unpaged query, for any ordering.
func TestCursorWalkMatchesOracle(t *testing.T) {
	pool := testdb.New(t)
	ctx := t.Context()
	seedCursorRows(t, pool, 400, 1)
	if _, err := pool.Exec(ctx, optional.ShiftStateIndex); err != nil {
		t.Fatal(err)
	}
	plain, withShift := NewStore(pool, StoreOptions{}), NewStore(pool, StoreOptions{ShiftStateIndex: true})
	rng := rand.New(rand.NewPCG(3, 4))
	fields := []string{"id", "vehicle_id", "timestamp", "speed", "odometer", "soc", "elevation", "shift_state"}
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 88 {
		var o Order
		for _, k := range rng.Perm(len(fields))[:1+rng.IntN(3)] {
			o = append(o, OrderField{Field: fields[k], Desc: rng.IntN(2) == 0})
		}
		var f Filter
		if rng.IntN(2) == 0 {
			v := fmt.Sprintf("v%d", rng.IntN(3))
			f.VehicleID = &v
		}
		if rng.IntN(2) == 0 {
			from, to := base.Add(time.Duration(rng.IntN(100))*time.Second), base.Add(time.Duration(200+rng.IntN(200))*time.Second)
			f.From, f.To = &from, &to
		}
		if i >= 80 { // one field of a per-vehicle index, every vehicle: the vehicles' parts merged
			o, f.VehicleID = Order{{Field: []string{"speed", "odometer", "shift_state"}[i%3], Desc: i/2%2 == 0}}, nil
		}
		size := int64(1 + rng.IntN(30))
		s := plain
		if o[0].Field == "shift_state" && i%2 == 0 { // half of them through the optional index
			s = withShift
		}
		name := fmt.Sprintf("%d %v size %d", i, o, size)
		want := allIDs(t, pool, f, o)

		var got []int64
		res, err := s.List(ctx, f, o, Page{Number: 1, Size: size}, "")
		if err != nil {
			t.Fatal(err)
		}
		if res.Previous != "" {
			t.Fatalf("%s: page 1 has a previous cursor", name)
		}
		pages := []ListResult{res}
		got = append(got, ids(res.Records)...)
		for res.Next != "" {
			if res, err = s.List(ctx, f, o, Page{Size: size}, res.Next); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if res.Count != int64(len(want)) {
				t.Fatalf("%s: count %d, want %d", name, res.Count, len(want))
			}
			pages = append(pages, res)
			got = append(got, ids(res.Records)...)
			if len(got) > len(want) {
				break
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s: forward walk\n got %v\nwant %v", name, got, want)
		}

		// Back from the last page: every previous cursor gives the page before, exactly.
		for k := len(pages) - 1; k > 0; k-- {
			prev, err := s.List(ctx, f, o, Page{Size: size}, pages[k].Previous)
			if err != nil {
				t.Fatal(err)
			}
			if w := ids(pages[k-1].Records); !slices.Equal(ids(prev.Records), w) {
				t.Fatalf("%s: page %d backwards = %v, want %v", name, k, ids(prev.Records), w)
			}
			if (prev.Previous == "") != (k == 1) {
				t.Fatalf("%s: page %d backwards: previous cursor %q", name, k, prev.Previous)
			}
		}
	}
}

// Rows inserted before a cursor's position do not shift the page after it (an offset
// would), and rows inserted after it show up in their place.
func TestCursorStableUnderInserts(t *testing.T) {
	pool := testdb.New(t)
	ctx := t.Context()
	seedCursorRows(t, pool, 200, 2)
	s := NewStore(pool, StoreOptions{})
	v := "v1"
	for _, o := range []Order{{{Field: "timestamp"}}, {{Field: "speed", Desc: true}}, {{Field: "soc"}, {Field: "shift_state", Desc: true}}} {
		f := Filter{VehicleID: &v}
		before := allIDs(t, pool, f, o)
		p1, err := s.List(ctx, f, o, Page{Number: 1, Size: 10}, "")
		if err != nil {
			t.Fatal(err)
		}
		// New rows that sort first: far earlier timestamps; null speed, which sorts first descending
		// (with the highest ids, first in the descending tie-break); the lowest soc.
		_, err = pool.Exec(ctx, `INSERT INTO vehicle_data (vehicle_id, "timestamp", speed, odometer, soc, elevation, shift_state)
			SELECT 'v1', '2000-01-01'::timestamptz + g * interval '1 second' + $1::interval, NULL, 0, 0, 0, NULL
			FROM generate_series(1, 5) g`, fmt.Sprintf("%d minutes", len(before)))
		if err != nil {
			t.Fatal(err)
		}
		p2, err := s.List(ctx, f, o, Page{Size: 10}, p1.Next)
		if err != nil {
			t.Fatal(err)
		}
		if want := before[10:20]; !slices.Equal(ids(p2.Records), want) {
			t.Errorf("%v: page after the cursor = %v, want %v (as before the inserts)", o, ids(p2.Records), want)
		}
		offset2, err := s.List(ctx, f, o, Page{Number: 2, Size: 10}, "")
		if err != nil {
			t.Fatal(err)
		}
		if slices.Equal(ids(offset2.Records), ids(p2.Records)) {
			t.Errorf("%v: offset page 2 did not shift: the inserts did not sort first, the test proves nothing", o)
		}
	}
}

// The seek predicate only ever holds parameters; no value becomes SQL text.
func TestSeekSQLUsesParametersOnly(t *testing.T) {
	v := "x'; DROP TABLE vehicle_data; --"
	o := Order{{Field: "shift_state"}, {Field: "vehicle_id", Desc: true}}
	key := int32(1)
	sql, args := seekSQL(scope{Filter: Filter{VehicleID: &v}, key: &key}, o, Cursor{Key: []any{v, v}, ID: 1}, 11)
	if strings.Contains(sql, "DROP") {
		t.Fatalf("value in SQL: %s", sql)
	}
	if len(args) < 3 {
		t.Fatalf("args = %v", args)
	}
}

// Every page by offset, before and past the deferred join (deferredFrom), is the oracle's slice,
// for random orderings and filters, on rows whose ids are partly not in timestamp order: an order
// by timestamp that dropped its tie-break wrongly, or a wrong odometer, speed or id bound from the
// hour rollup, would show.
func TestOffsetPagesMatchOracle(t *testing.T) {
	t.Parallel()
	pool := testdb.New(t)
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(11, 12))
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	const n = 6000
	// The sample's place in time, shared by one row of each vehicle (ties across vehicles). Ids
	// follow i: in time order for the first two thirds (tight id bounds in the rollups), in no
	// order for the rest (late arrivals).
	const ordered = n / 3 // of n/2 time slots
	perm := rng.Perm(n/2 - ordered)
	rows := make([][]any, n)
	for i := range rows {
		// v1's speed is missing half the time: more rows than deferredFrom without one.
		var speed any
		if rng.IntN(4) > 2*(i%2) {
			speed = float64(rng.IntN(5)) * 10
		}
		at := i / 2
		if at >= ordered {
			at = ordered + perm[at-ordered]
		}
		// The odometer grows with time and ties across hour edges; v0's goes back now and then,
		// which spoils the clean cuts of the hours around (cutSeek). The elevation changes
		// slowly, so that the hours bound a page by it (boundedPage).
		odometer := float64(at / 3)
		if i%2 == 0 && i%1500 == 0 {
			odometer = float64(rng.IntN(n / 6))
		}
		rows[i] = []any{
			fmt.Sprintf("v%d", i%2), base.Add(time.Duration(at) * 7 * time.Second),
			speed, odometer, int16(rng.IntN(4) * 25), float64(at/97%9) - 3, []any{"D", "N", "P", "R", "X", nil}[rng.IntN(6)],
		}
	}
	if _, err := pool.CopyFrom(ctx, pgx.Identifier{"vehicle_data"},
		[]string{"vehicle_id", "timestamp", "speed", "odometer", "soc", "elevation", "shift_state"}, pgx.CopyFromRows(rows)); err != nil {
		t.Fatal(err)
	}
	// 6,000 rows are too few for a seek from seekFrom: the second store seeks from deferredFrom,
	// and within a shift state's rows from its tenth. The third reads the optional shift_state
	// index, there for every store (a store without ShiftStateIndex reads sample_hour_states).
	if _, err := pool.Exec(ctx, optional.ShiftStateIndex); err != nil {
		t.Fatal(err)
	}
	stores := []*Store{NewStore(pool, StoreOptions{}), NewStore(pool, StoreOptions{seekFrom: deferredFrom, stateFrom: 10}),
		NewStore(pool, StoreOptions{ShiftStateIndex: true})}
	fields := []string{"id", "vehicle_id", "timestamp", "speed", "odometer", "soc", "elevation", "shift_state"}
	for i := range 78 {
		o := Order{{Field: fields[rng.IntN(len(fields))], Desc: rng.IntN(2) == 0}}
		if i%2 == 0 {
			o[0].Field = []string{"timestamp", "odometer", "speed", "id", "soc", "elevation", "shift_state"}[i/2%7]
		}
		if i >= 60 { // soc and elevation across vehicles, each way (boundedPage's shared bound)
			o[0] = OrderField{Field: []string{"soc", "elevation"}[i%2], Desc: i/2%2 == 0}
		}
		if rng.IntN(2) == 0 && i < 68 {
			o = append(o, OrderField{Field: fields[rng.IntN(len(fields))], Desc: rng.IntN(2) == 0})
		}
		var f Filter
		if i%5 != 4 && i < 60 || i >= 72 && i < 76 {
			v := fmt.Sprintf("v%d", rng.IntN(2))
			f.VehicleID = &v
		}
		if i >= 68 { // shift_state alone, each way, with and without a range: its index, merged across vehicles
			o = Order{{Field: "shift_state", Desc: i%2 == 0}}
		}
		if i >= 76 { // every vehicle's piece by shift_state in a range (vehiclePage, then mergedPage)
			o = Order{{Field: "vehicle_id"}, {Field: "shift_state", Desc: i%2 == 0}}
		}
		withRange := rng.IntN(3) > 0
		if i >= 68 {
			withRange = i/2%2 == 0
		}
		if withRange { // off the hour and minute edges
			from := base.Add(time.Duration(rng.IntN(3*3600)+17) * time.Second)
			to := from.Add(time.Duration(2*3600+rng.IntN(3*3600)) * time.Second)
			f.From, f.To = &from, &to
		}
		want := allIDs(t, pool, f, o)
		size := int64([]int{7, 100}[rng.IntN(2)])
		last := max(1, (int64(len(want))+size-1)/size)
		// The first pages, those on both sides of the deferred join, two past it (where the hour
		// seek starts in a later hour) and the last.
		pages := []int64{1, 2, 3, deferredFrom/size - 1, deferredFrom / size, deferredFrom/size + 1, deferredFrom/size + 2, last}
		if past := deferredFrom/size + 3; past < last {
			pages = append(pages, past+rng.Int64N(last-past), past+rng.Int64N(last-past))
		}
		for _, number := range pages {
			if number > last {
				continue
			}
			for j, s := range stores {
				res, err := s.List(ctx, f, o, Page{Number: number, Size: size}, "")
				if err != nil {
					t.Fatalf("%d %v page %d x%d: %v", i, o, number, size, err)
				}
				lo, hi := min(int64(len(want)), (number-1)*size), min(int64(len(want)), number*size)
				if got := ids(res.Records); !slices.Equal(got, want[lo:hi]) {
					t.Fatalf("%d %v %+v page %d x%d, store %d:\n got %v\nwant %v", i, o, f, number, size, j, got, want[lo:hi])
				}
			}
		}
	}
	// Every page by speed or odometer alone without a vehicle filter, which merges the
	// vehicles' index scans (mergedPage): ties across vehicles, the rows without a speed, and
	// in a time range each vehicle's bounds from its hours; by id, bounded in a time range by
	// the ids of every vehicle's hours; and by vehicle_id, one vehicle's page after the other
	// (vehiclePage), pages that span two vehicles included.
	for _, o := range []Order{{{Field: "speed"}}, {{Field: "speed", Desc: true}}, {{Field: "odometer"}}, {{Field: "odometer", Desc: true}},
		{{Field: "id"}}, {{Field: "id", Desc: true}}, {{Field: "vehicle_id"}}, {{Field: "vehicle_id", Desc: true}},
		{{Field: "vehicle_id", Desc: true}, {Field: "speed"}}} {
		// On an hour's edge every row of the first covering hour is in the range, the one with
		// the smallest id too.
		from, to, edge := base.Add(1800*time.Second+17*time.Second), base.Add(5*3600*time.Second), base.Add(time.Hour)
		for _, f := range []Filter{{}, {From: &from, To: &to}, {From: &from}, {From: &edge, To: &to}} {
			checkPagesFrom(t, stores[0], f, o, 70, 1, allIDs(t, pool, f, o))
		}
	}
	// Every page and cursor page by shift_state alone, both ways, from sample_hour_states (and
	// seeking from its hours' cuts), where one state's rows end and the next one's begin: of a
	// vehicle and of both, in ranges on and off the hours' edges, one without a whole hour.
	// The last third's ids are out of time order, so its hours give no clean cut.
	{
		v := "v0"
		from, to, edge := base.Add(1800*time.Second+17*time.Second), base.Add(5*3600*time.Second), base.Add(time.Hour)
		short := base.Add(2*time.Hour + 90*time.Second)
		for _, o := range []Order{{{Field: "shift_state"}}, {{Field: "shift_state", Desc: true}}} {
			for _, f := range []Filter{{}, {From: &from, To: &to}, {From: &edge}, {To: &to}, {From: &edge, To: &short},
				{VehicleID: &v}, {VehicleID: &v, From: &from, To: &to}, {VehicleID: &v, From: &edge}} {
				want := allIDs(t, pool, f, o)
				checkPagesFrom(t, stores[1], f, o, 90, 1, want)
				checkCursorWalk(t, stores[0], f, o, 90, want)
			}
		}
	}
	// Every deep page by speed alone, both ways, where the rows without a speed and those with
	// one meet (speedSeekPage).
	v := "v1"
	from, to := base.Add(1800*time.Second+17*time.Second), base.Add(5*3600*time.Second)
	for _, o := range []Order{{{Field: "speed"}}, {{Field: "speed", Desc: true}}} {
		for _, f := range []Filter{{VehicleID: &v}, {VehicleID: &v, From: &from, To: &to}} {
			const size = 30
			checkPagesFrom(t, stores[1], f, o, size, deferredFrom/size+1, allIDs(t, pool, f, o))
		}
	}
}

// checkPagesFrom checks every page of size rows from page first on: each is want's slice.
func checkPagesFrom(t *testing.T, s *Store, f Filter, o Order, size, first int64, want []int64) {
	t.Helper()
	for number := first; (number-1)*size < int64(len(want)); number++ {
		res, err := s.List(t.Context(), f, o, Page{Number: number, Size: size}, "")
		if err != nil {
			t.Fatalf("%v page %d: %v", o, number, err)
		}
		lo, hi := (number-1)*size, min(int64(len(want)), number*size)
		if got := ids(res.Records); !slices.Equal(got, want[lo:hi]) {
			t.Fatalf("%v %+v page %d x%d:\n got %v\nwant %v", o, f, number, size, got, want[lo:hi])
		}
	}
}

// checkCursorWalk walks o's cursors forward from page 1, size rows a page, then back from the
// last page, and wants every page to be want's rows at its place.
func checkCursorWalk(t *testing.T, s *Store, f Filter, o Order, size int64, want []int64) {
	t.Helper()
	ctx := t.Context()
	res, err := s.List(ctx, f, o, Page{Number: 1, Size: size}, "")
	if err != nil {
		t.Fatal(err)
	}
	pages := []ListResult{res}
	got := ids(res.Records)
	for res.Next != "" && len(got) <= len(want) {
		if res, err = s.List(ctx, f, o, Page{Size: size}, res.Next); err != nil {
			t.Fatalf("%v %+v: %v", o, f, err)
		}
		pages = append(pages, res)
		got = append(got, ids(res.Records)...)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%v %+v x%d: cursor walk of %d rows, want %d\n got %v\nwant %v", o, f, size, len(got), len(want), got, want)
	}
	for k := len(pages) - 1; k > 0; k-- {
		prev, err := s.List(ctx, f, o, Page{Size: size}, pages[k].Previous)
		if err != nil {
			t.Fatal(err)
		}
		if w := ids(pages[k-1].Records); !slices.Equal(ids(prev.Records), w) {
			t.Fatalf("%v %+v x%d: page %d backwards = %v, want %v", o, f, size, k, ids(prev.Records), w)
		}
	}
}

// Every page by soc or elevation (boundedPage), every cursor page (bandedSeek) and every export (bandSQL), is the oracle's, for a vehicle and across
// vehicles, with ranges on and off the rollups' edges, on values that make the bands work:
// elevations with fractions, long climbs and flat stretches (five-minute rows that span many
// metres and rows of one value), negative ones, and past 2^53, where a double plus one is
// itself; soc over its whole domain with many ties; ids partly out of time order. A wrong
// count of the rows before the band, a band that leaves out a row, or a wrong unit of ranks
// shows as a page off by rows.
func TestBoundedPagesMatchOracle(t *testing.T) {
	t.Parallel()
	pool := testdb.New(t)
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(21, 22))
	base := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	const n = 4500
	rows := make([][]any, 0, n)
	elevation, soc := []float64{10.5, -40.25, 1e16}, []int{50, 0, 100}
	for i := range n {
		v := i % 3
		at := base.Add(time.Duration(i/3)*11*time.Second + time.Duration(v)*time.Second)
		if i%3 == 0 && i >= 3000 { // late arrivals: ids out of time order
			at = base.Add(time.Duration(rng.IntN(1500))*11*time.Second + 2*time.Second + time.Duration(rng.IntN(900))*time.Millisecond)
		}
		switch step := rng.IntN(10); {
		case step < 5: // parked: the same value
		case step < 9: // within a metre, mostly
			elevation[v] += rng.NormFloat64() * 0.3
		default: // a climb: a five-minute row spans metres
			elevation[v] += float64(rng.IntN(60) - 30)
		}
		if v == 2 && rng.IntN(50) == 0 {
			elevation[v] = []float64{1e300, -1e300, 1e16 + 2, 1e16}[rng.IntN(4)]
		}
		soc[v] = min(100, max(0, soc[v]+rng.IntN(3)-1))
		if rng.IntN(40) == 0 {
			soc[v] = rng.IntN(101)
		}
		rows = append(rows, []any{fmt.Sprintf("b%d", v), at, nil, float64(i), int16(soc[v]), elevation[v], nil})
	}
	if _, err := pool.CopyFrom(ctx, pgx.Identifier{"vehicle_data"},
		[]string{"vehicle_id", "timestamp", "speed", "odometer", "soc", "elevation", "shift_state"}, pgx.CopyFromRows(rows)); err != nil {
		t.Fatal(err)
	}
	s := NewStore(pool, StoreOptions{})
	// Exports by soc or elevation go out in bands (bandSQL): of the defaults' few, and of 50
	// rows each, so that bands meet inside five-minute rows and runs of one value.
	exporters := []*Store{s, NewStore(pool, StoreOptions{bandRows: 50})}
	at := func(d time.Duration) *time.Time { v := base.Add(d); return &v }
	ranges := [][2]*time.Time{
		{nil, nil},
		{at(17*time.Minute + 13*time.Second), at(3*time.Hour + 41*time.Minute + 7*time.Second)}, // off every edge
		{at(time.Hour), at(3*time.Hour - time.Microsecond)},                                     // whole hours
		{at(time.Hour + 5*time.Minute), at(time.Hour + 52*time.Minute)},                         // no whole hour
		{at(2*time.Hour + 6*time.Minute), at(2*time.Hour + 9*time.Minute)},                      // no whole five minutes
		{at(4 * time.Hour), nil},
	}
	orders := []Order{
		{{Field: "soc"}}, {{Field: "soc", Desc: true}}, {{Field: "elevation"}}, {{Field: "elevation", Desc: true}},
		{{Field: "soc"}, {Field: "timestamp", Desc: true}}, {{Field: "elevation", Desc: true}, {Field: "odometer"}},
	}
	for _, vehicle := range []string{"", "b2", "b0"} {
		for _, r := range ranges {
			for _, o := range orders {
				f := Filter{From: r[0], To: r[1]}
				if vehicle != "" {
					f.VehicleID = &vehicle
				}
				want := allIDs(t, pool, f, o)
				for j, e := range exporters {
					var got []int64
					if err := e.Stream(ctx, f, o, func(r *Record) error { got = append(got, r.ID); return nil }); err != nil {
						t.Fatal(err)
					}
					if !slices.Equal(got, want) {
						t.Fatalf("export %v %+v, store %d: %d rows, want %d\n got %v\nwant %v", o, f, j, len(got), len(want), got, want)
					}
				}
				checkPagesFrom(t, s, f, o, 211, 1, want)
				for j, e := range exporters { // cursor pages go out in bands too (bandedSeek)
					checkCursorWalk(t, e, f, o, []int64{211, 97}[j], want)
				}
				for range 3 {
					size := int64(1 + rng.IntN(30))
					number := 1 + rng.Int64N(int64(len(want))/size+1)
					checkPagesFrom(t, s, f, o, size, number, want[:min(int64(len(want)), number*size)])
				}
			}
		}
	}
}
