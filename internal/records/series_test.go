package records

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vehicle-data/vehicle-data/internal/testdb"
	"github.com/vehicle-data/vehicle-data/internal/timeparse"
)

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := timeparse.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestBucketStartAndCount(t *testing.T) {
	berlin := mustZone(t, "Europe/Berlin")
	utc := time.UTC
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	starts := []struct {
		in    string
		loc   *time.Location
		width time.Duration
		want  string
	}{
		{"2024-06-01T12:34:56.789Z", utc, time.Second, "2024-06-01T12:34:56Z"},
		{"2024-06-01T12:34:56.789Z", utc, 15 * time.Second, "2024-06-01T12:34:45Z"},
		{"2024-06-01T12:34:56Z", utc, 5 * time.Minute, "2024-06-01T12:30:00Z"},
		{"2024-06-01T12:34:56Z", berlin, 3 * time.Hour, "2024-06-01T12:00:00Z"}, // epoch-aligned, not local
		{"1969-12-31T23:59:59.5Z", utc, 10 * time.Second, "1969-12-31T23:59:50Z"},
		{"2024-06-01T21:59:59Z", berlin, Day, "2024-05-31T22:00:00Z"},
		{"2024-06-01T22:00:00Z", berlin, Day, "2024-06-01T22:00:00Z"},
		{"2024-03-31T12:00:00Z", berlin, Day, "2024-03-30T23:00:00Z"},  // a 23-hour day
		{"2024-10-27T12:00:00Z", berlin, Day, "2024-10-26T22:00:00Z"},  // a 25-hour day
		{"2024-06-02T12:00:00Z", utc, Week, "2024-05-27T00:00:00Z"},    // Sunday: the Monday before
		{"2024-06-03T00:00:00Z", utc, Week, "2024-06-03T00:00:00Z"},    // Monday midnight
		{"2024-06-02T22:30:00Z", berlin, Week, "2024-06-02T22:00:00Z"}, // already Monday in Berlin
	}
	for _, tt := range starts {
		if got := BucketStart(at(tt.in), tt.loc, tt.width).Format(time.RFC3339Nano); got != tt.want {
			t.Errorf("BucketStart(%s, %v, %v) = %s, want %s", tt.in, tt.loc, tt.width, got, tt.want)
		}
	}
	counts := []struct {
		from, to string
		loc      *time.Location
		width    time.Duration
		want     int64
	}{
		{"2024-06-01T00:00:00Z", "2024-06-01T00:00:00Z", utc, time.Second, 1},
		{"2024-06-01T00:00:00Z", "2024-06-01T00:59:59Z", utc, 5 * time.Second, 720},
		{"2024-06-01T00:00:00Z", "2024-06-01T01:00:00Z", utc, 5 * time.Second, 721},
		{"2024-06-01T00:00:01Z", "2024-06-01T00:00:04Z", utc, 5 * time.Second, 1},
		{"2024-06-01T00:00:04Z", "2024-06-01T00:00:05Z", utc, 5 * time.Second, 2},
		{"2024-06-01T00:00:00Z", "2024-06-07T23:59:59Z", utc, Day, 7},
		{"2024-06-01T00:00:00Z", "2024-06-07T23:59:59Z", berlin, Day, 8},
		{"2024-06-02T00:00:00Z", "2024-06-03T00:00:00Z", utc, Week, 2},
		{"2024-06-03T00:00:00Z", "2024-06-09T23:59:59Z", utc, Week, 1},
	}
	for _, tt := range counts {
		if got := BucketCount(at(tt.from), at(tt.to), tt.loc, tt.width); got != tt.want {
			t.Errorf("BucketCount(%s, %s, %v, %v) = %d, want %d", tt.from, tt.to, tt.loc, tt.width, got, tt.want)
		}
	}
	if w := ChooseWidth(at("2024-06-01T00:00:00Z"), at("2024-06-01T00:59:59Z"), utc, 1000); w != 5*time.Second {
		t.Errorf("an hour in 1000 points: %v, want 5s", w)
	}
	if w := ChooseWidth(at("2000-01-01T00:00:00Z"), at("2024-01-01T00:00:00Z"), utc, 10); w != Week {
		t.Errorf("24 years in 10 points: %v, want the week fallback", w)
	}
}

func TestParseSeries(t *testing.T) {
	s := func(v string) *string { return &v }
	n := func(v int32) *int32 { return &v }
	tests := []struct {
		name   string
		id     string
		in     SeriesInput
		fields []string // the fields named in the 400, nil for a valid request
	}{
		{"defaults", "veh1", SeriesInput{}, nil},
		{"minute bounds", "veh1", SeriesInput{InitialTimestamp: s("2024-06-01T12:05"), FinalTimestamp: s("2024-06-01 13:05")}, nil},
		{"subset", "veh1", SeriesInput{Fields: s("soc, speed")}, nil},
		{"unknown field", "veh1", SeriesInput{Fields: s("speed,rpm")}, []string{"fields"}},
		{"field twice", "veh1", SeriesInput{Fields: s("soc,soc")}, []string{"fields"}},
		{"empty field", "veh1", SeriesInput{Fields: s("soc,")}, []string{"fields"}},
		{"max_points 0", "veh1", SeriesInput{MaxPoints: n(0)}, []string{"max_points"}},
		{"max_points 10001", "veh1", SeriesInput{MaxPoints: n(10001)}, []string{"max_points"}},
		{"max_points 10000", "veh1", SeriesInput{MaxPoints: n(10000)}, nil},
		{"bad bound and zone", "veh1", SeriesInput{InitialTimestamp: s("yesterday"), Timezone: s("Mars/Olympus")}, []string{"timezone", "initial_timestamp"}},
		{"reversed", "veh1", SeriesInput{InitialTimestamp: s("2024-06-02"), FinalTimestamp: s("2024-06-01")}, []string{"initial_timestamp"}},
		{"empty vehicle", "", SeriesInput{}, []string{"vehicle_id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, errs := ParseSeries(tt.id, tt.in)
			var got []string
			for _, e := range errs {
				got = append(got, e.Field)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.fields) {
				t.Fatalf("errors on %v, want %v (%v)", got, tt.fields, errs)
			}
			if tt.fields == nil && (len(q.Fields) == 0 || q.MaxPoints < 1) {
				t.Fatalf("query %+v", q)
			}
		})
	}
}

type seriesRow struct {
	ts                       time.Time
	speed                    *float64
	odometer, soc, elevation float64
}

// The series must equal a brute-force aggregation of the raw rows: random data with nulls
// and bursts, every bucket width, bounds on and off bucket edges, zones with daylight saving
// time and odd offsets for the day and week buckets.
func TestSeriesMatchesBruteForce(t *testing.T) {
	pool := testdb.New(t)
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(11, 12))
	// 4000 samples from 2024-03-25 to past the autumn change in Berlin: bursts a few
	// milliseconds apart, and gaps of up to a day.
	var (
		rows []seriesRow
		ts   = time.Date(2024, 3, 25, 0, 0, 0, 0, time.UTC)
	)
	for range 4000 {
		switch r := rng.IntN(100); {
		case r < 50:
			ts = ts.Add(time.Duration(1+rng.IntN(3000)) * time.Millisecond)
		case r < 97:
			ts = ts.Add(time.Duration(1+rng.IntN(600)) * time.Second)
		default:
			ts = ts.Add(time.Duration(rng.IntN(26)) * time.Hour)
		}
		ts = ts.Add(time.Duration(rng.IntN(1000)) * time.Microsecond)
		r := seriesRow{ts: ts, odometer: float64(rng.IntN(100000)) / 10, soc: float64(rng.IntN(101)), elevation: float64(rng.IntN(2000)-500) / 4}
		if rng.IntN(3) > 0 {
			v := float64(rng.IntN(1500)) / 10
			r.speed = &v
		}
		rows = append(rows, r)
	}
	var key int32
	if err := pool.QueryRow(ctx, "SELECT vehicle_key_for('s1')").Scan(&key); err != nil {
		t.Fatal(err)
	}
	// In seven interleaved statements, so that most minutes and hours of the rollups are merged
	// from several inserts (the trigger's ON CONFLICT path), as uploads of overlapping files do.
	batches := make([][][]any, 7)
	for i, r := range rows {
		batches[i%7] = append(batches[i%7], []any{key, r.ts, r.speed, r.odometer, int16(r.soc), r.elevation, nil})
	}
	for _, b := range batches {
		if _, err := pool.CopyFrom(ctx, pgx.Identifier{"samples"},
			[]string{"vehicle_key", "timestamp", "speed", "odometer", "soc", "elevation", "shift_state"}, pgx.CopyFromRows(b)); err != nil {
			t.Fatal(err)
		}
	}
	s := NewStore(pool, StoreOptions{})
	first, last := rows[0].ts, rows[len(rows)-1].ts
	zones := []*time.Location{time.UTC, mustZone(t, "Europe/Berlin"), mustZone(t, "America/St_Johns"), mustZone(t, "Asia/Kathmandu")}
	seen := map[time.Duration]bool{}
	for i := range 400 {
		loc := zones[rng.IntN(len(zones))]
		span := time.Duration(rng.Int64N(int64(last.Sub(first)) + int64(time.Hour)))
		if rng.IntN(2) == 0 {
			span = time.Duration(rng.Int64N(int64(6 * time.Hour)))
		}
		from := first.Add(time.Duration(rng.Int64N(int64(last.Sub(first)))) - time.Hour)
		if rng.IntN(3) == 0 { // on a bucket edge
			from = BucketStart(from, loc, BucketWidths[rng.IntN(len(BucketWidths))])
		}
		from = from.Truncate(time.Microsecond) // as the API parses bounds
		to := from.Add(span)
		if rng.IntN(4) == 0 { // on a sample
			to = rows[rng.IntN(len(rows))].ts
			if to.Before(from) {
				from, to = to, from
			}
		}
		q := SeriesQuery{VehicleID: "s1", Loc: loc, Fields: SeriesFields, MaxPoints: []int{1, 3, 10, 100, 1000, 10000}[rng.IntN(6)]}
		if rng.IntN(8) > 0 {
			q.From = &from
		}
		if rng.IntN(8) > 0 {
			q.To = &to
		}
		if rng.IntN(3) == 0 {
			q.Fields = []string{"soc", "speed"}
		}
		got, err := s.Series(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("%d: %v..%v in %v, max %d", i, q.From, q.To, loc, q.MaxPoints)
		lo, hi := first, last
		if q.From != nil {
			lo = *q.From
		}
		if q.To != nil {
			hi = *q.To
		}
		if hi.Before(lo) {
			continue // one bound past the data: covered by the HTTP tests
		}
		if !got.From.Equal(lo) || !got.To.Equal(hi) {
			t.Fatalf("%s: range %v..%v, want %v..%v", name, got.From, got.To, lo, hi)
		}
		wantWidth := bruteWidth(lo, hi, loc, q.MaxPoints)
		if got.Width != wantWidth {
			t.Fatalf("%s: width %v, want %v", name, got.Width, wantWidth)
		}
		seen[got.Width] = true
		checkBuckets(t, name, got, bruteBuckets(rows, lo, hi, loc, got.Width, q.Fields))
	}
	for _, w := range BucketWidths {
		if !seen[w] {
			t.Errorf("no case chose the %v width: widen the random ranges", w)
		}
	}
}

// bruteWidth counts buckets by walking them one by one.
func bruteWidth(from, to time.Time, loc *time.Location, maxPoints int) time.Duration {
	for _, w := range BucketWidths {
		n := 0
		for b := BucketStart(from, loc, w); !b.After(to) && n <= maxPoints; n++ {
			switch w {
			case Day:
				l := b.In(loc)
				b = time.Date(l.Year(), l.Month(), l.Day()+1, 0, 0, 0, 0, loc).UTC()
			case Week:
				l := b.In(loc)
				b = time.Date(l.Year(), l.Month(), l.Day()+7, 0, 0, 0, 0, loc).UTC()
			default:
				b = b.Add(w)
			}
		}
		if n <= maxPoints {
			return w
		}
	}
	return Week
}

func bruteBuckets(rows []seriesRow, from, to time.Time, loc *time.Location, w time.Duration, fields []string) []Bucket {
	var out []Bucket
	type acc struct {
		n   int
		sum float64
		st  Stats
	}
	var accs []acc
	for _, r := range rows { // rows are in time order
		if r.ts.Before(from) || r.ts.After(to) {
			continue
		}
		start := BucketStart(r.ts, loc, w)
		if len(out) == 0 || !out[len(out)-1].Start.Equal(start) {
			out = append(out, Bucket{Start: start, Stats: make([]*Stats, len(fields))})
			accs = make([]acc, len(fields))
		}
		b := &out[len(out)-1]
		b.Count++
		for i, f := range fields {
			var v *float64
			switch f {
			case "speed":
				v = r.speed
			case "odometer":
				v = &r.odometer
			case "soc":
				v = &r.soc
			case "elevation":
				v = &r.elevation
			}
			if v == nil {
				continue
			}
			a := &accs[i]
			if a.n == 0 {
				a.st = Stats{Min: *v, Max: *v, First: *v}
			}
			a.n++
			a.sum += *v
			a.st.Min, a.st.Max, a.st.Last = math.Min(a.st.Min, *v), math.Max(a.st.Max, *v), *v
			st := a.st
			st.Avg = a.sum / float64(a.n)
			b.Stats[i] = &st
		}
	}
	return out
}

func checkBuckets(t *testing.T, name string, got Series, want []Bucket) {
	t.Helper()
	if len(got.Buckets) != len(want) {
		t.Fatalf("%s: %d buckets, want %d", name, len(got.Buckets), len(want))
	}
	for i, g := range got.Buckets {
		w := want[i]
		if !g.Start.Equal(w.Start) || g.Count != w.Count {
			t.Fatalf("%s: bucket %d = %v x%d, want %v x%d", name, i, g.Start, g.Count, w.Start, w.Count)
		}
		for j, f := range got.Fields {
			gs, ws := g.Stats[j], w.Stats[j]
			if (gs == nil) != (ws == nil) {
				t.Fatalf("%s: bucket %v %s = %v, want %v", name, g.Start, f, gs, ws)
			}
			if gs == nil {
				continue
			}
			if gs.Min != ws.Min || gs.Max != ws.Max || gs.First != ws.First || gs.Last != ws.Last ||
				math.Abs(gs.Avg-ws.Avg) > 1e-9*math.Max(1, math.Abs(ws.Avg)) {
				t.Fatalf("%s: bucket %v %s = %+v, want %+v", name, g.Start, f, *gs, *ws)
			}
		}
	}
}

// Day buckets in a zone whose midnights fall on no whole five minutes (Amsterdam kept its
// local mean time, +00:19:32, until 1937) fit no rollup: they are grouped from the samples in
// PostgreSQL, the one series path left there besides one-minute buckets.
func TestSeriesUnalignedDays(t *testing.T) {
	pool := testdb.New(t)
	ctx := t.Context()
	loc := mustZone(t, "Europe/Amsterdam")
	rng := rand.New(rand.NewPCG(3, 4))
	var (
		rows []seriesRow
		ts   = time.Date(1890, 5, 1, 21, 3, 0, 0, time.UTC)
		b    [][]any
		key  int32
	)
	if err := pool.QueryRow(ctx, "SELECT vehicle_key_for('lmt')").Scan(&key); err != nil {
		t.Fatal(err)
	}
	for range 600 {
		ts = ts.Add(time.Duration(1+rng.IntN(5400)) * time.Second)
		r := seriesRow{ts: ts, odometer: float64(rng.IntN(1000)), soc: float64(rng.IntN(101)), elevation: float64(rng.IntN(300))}
		if rng.IntN(4) > 0 {
			v := float64(rng.IntN(130))
			r.speed = &v
		}
		rows = append(rows, r)
		b = append(b, []any{key, r.ts, r.speed, r.odometer, int16(r.soc), r.elevation, nil})
	}
	if _, err := pool.CopyFrom(ctx, pgx.Identifier{"samples"},
		[]string{"vehicle_key", "timestamp", "speed", "odometer", "soc", "elevation", "shift_state"}, pgx.CopyFromRows(b)); err != nil {
		t.Fatal(err)
	}
	first, last := rows[0].ts, rows[len(rows)-1].ts
	if level := alignment(calendarBounds(first, last, loc, Day)); level != levelRaw {
		t.Fatalf("alignment %d, want levelRaw: the test would check another path", level)
	}
	got, err := NewStore(pool, StoreOptions{}).Series(ctx, SeriesQuery{VehicleID: "lmt", Loc: loc, Fields: SeriesFields, MaxPoints: 25})
	if err != nil {
		t.Fatal(err)
	}
	if got.Width != Day {
		t.Fatalf("width %v, want a day", got.Width)
	}
	checkBuckets(t, "Amsterdam 1890", got, bruteBuckets(rows, first, last, loc, Day, SeriesFields))
}
