package records

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/vehicle-data/vehicle-data/internal/apperr"
	"github.com/vehicle-data/vehicle-data/internal/database"
)

// SeriesFields are the measurements a series can carry, in their default order.
var SeriesFields = []string{"speed", "odometer", "soc", "elevation"}

const (
	DefaultMaxPoints = 1000
	MaxMaxPoints     = 10000
)

// BucketWidths are the series' bucket widths, smallest first. Widths under a day are
// aligned to multiples of themselves since the Unix epoch; a day starts at midnight in the
// request's time zone and a week at Monday midnight there.
var BucketWidths = []time.Duration{
	time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour,
	Day, Week,
}

// Day and Week are the nominal widths of the calendar buckets.
const (
	Day  = 24 * time.Hour
	Week = 7 * Day
)

// SeriesQuery is a validated series request.
type SeriesQuery struct {
	VehicleID string
	From, To  *time.Time // inclusive; nil: the vehicle's first or last timestamp
	Loc       *time.Location
	Fields    []string // a subset of SeriesFields, in the order asked for
	MaxPoints int
}

// SeriesInput is a series request as it arrives, still unparsed.
type SeriesInput struct {
	InitialTimestamp, FinalTimestamp, Timezone, Fields *string
	MaxPoints                                          *int32
}

// ParseSeries validates a series request and reports each bad parameter.
func ParseSeries(vehicleID string, in SeriesInput) (SeriesQuery, []apperr.FieldError) {
	q := SeriesQuery{VehicleID: vehicleID, Loc: time.UTC, Fields: SeriesFields, MaxPoints: DefaultMaxPoints}
	f, loc, errs := parseFilter(FilterInput{
		VehicleID: &vehicleID, InitialTimestamp: in.InitialTimestamp, FinalTimestamp: in.FinalTimestamp, Timezone: in.Timezone,
	})
	if f.VehicleID == nil && len(errs) == 0 {
		errs = append(errs, apperr.FieldError{Field: "vehicle_id", Message: "must not be empty"})
	}
	q.From, q.To, q.Loc = f.From, f.To, loc
	if in.Fields != nil && strings.TrimSpace(*in.Fields) != "" {
		fields, err := parseSeriesFields(*in.Fields)
		if err != nil {
			errs = append(errs, apperr.FieldError{Field: "fields", Message: err.Error()})
		} else {
			q.Fields = fields
		}
	}
	if in.MaxPoints != nil {
		if n := *in.MaxPoints; n < 1 || n > MaxMaxPoints {
			errs = append(errs, apperr.FieldError{Field: "max_points", Message: fmt.Sprintf("must be an integer from 1 to %d", MaxMaxPoints)})
		} else {
			q.MaxPoints = int(n)
		}
	}
	return q, errs
}

func parseSeriesFields(s string) ([]string, error) {
	var (
		out  []string
		seen = map[string]bool{}
	)
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		ok := false
		for _, f := range SeriesFields {
			ok = ok || f == name
		}
		switch {
		case name == "":
			return nil, fmt.Errorf("empty field in %q; expected a comma-separated list of %s", truncate(s, 50), strings.Join(SeriesFields, ", "))
		case !ok:
			return nil, fmt.Errorf("unknown field %q; allowed: %s", truncate(name, 50), strings.Join(SeriesFields, ", "))
		case seen[name]:
			return nil, fmt.Errorf("field %q is named twice", name)
		}
		seen[name] = true
		out = append(out, name)
	}
	return out, nil
}

// ChooseWidth returns the smallest bucket width for which the buckets that [from, to]
// touches number at most maxPoints, or a week when none does.
func ChooseWidth(from, to time.Time, loc *time.Location, maxPoints int) time.Duration {
	for _, w := range BucketWidths {
		if BucketCount(from, to, loc, w) <= int64(maxPoints) {
			return w
		}
	}
	return Week
}

// BucketCount is the number of buckets of width w that [from, to] touches.
func BucketCount(from, to time.Time, loc *time.Location, w time.Duration) int64 {
	switch w {
	case Day:
		return civilDay(to, loc) - civilDay(from, loc) + 1
	case Week:
		return floorDiv(civilDay(to, loc)+3, 7) - floorDiv(civilDay(from, loc)+3, 7) + 1 // 1970-01-01 was a Thursday
	}
	us := w.Microseconds()
	return floorDiv(to.UnixMicro(), us) - floorDiv(from.UnixMicro(), us) + 1
}

// BucketStart is the start of t's bucket of width w.
func BucketStart(t time.Time, loc *time.Location, w time.Duration) time.Time {
	switch w {
	case Day, Week:
		l := t.In(loc)
		d := time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, loc)
		if w == Week {
			d = time.Date(l.Year(), l.Month(), l.Day()-(int(l.Weekday())+6)%7, 0, 0, 0, 0, loc)
		}
		return d.UTC()
	}
	us := w.Microseconds()
	return time.UnixMicro(floorDiv(t.UnixMicro(), us) * us).UTC()
}

// civilDay numbers t's date in loc: days since 1970-01-01.
func civilDay(t time.Time, loc *time.Location) int64 {
	l := t.In(loc)
	return floorDiv(time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, time.UTC).Unix(), 86400)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// Stats are one field's figures in one bucket; nil in a Bucket when the field has no
// non-null value there.
type Stats struct {
	Min, Max, Avg, First, Last float64
}

// Bucket is one bucket of a series that holds at least one record.
type Bucket struct {
	Start time.Time
	Count int64
	// Stats per requested field, in the query's Fields order.
	Stats []*Stats
}

// Series is the answer to a SeriesQuery.
type Series struct {
	VehicleID string
	From, To  time.Time
	Width     time.Duration
	Fields    []string
	Buckets   []Bucket
}

// Series aggregates one vehicle's records into buckets. Unknown vehicle: NotFound.
func (s *Store) Series(ctx context.Context, q SeriesQuery) (Series, error) {
	out := Series{VehicleID: q.VehicleID, Fields: q.Fields}
	err := s.readTx(ctx, laneShort, func(tx pgx.Tx) error {
		v, err := s.q.GetVehicle(ctx, tx, q.VehicleID)
		if errors.Is(err, pgx.ErrNoRows) {
			return apperr.NotFound("Not found.")
		}
		if err != nil {
			return fmt.Errorf("series vehicle: %w", err)
		}
		out.From, out.To = v.FirstTimestamp.UTC(), v.LastTimestamp.UTC()
		if q.From != nil {
			out.From = *q.From
		}
		if q.To != nil {
			out.To = *q.To
		}
		if out.To.Before(out.From) { // one bound given beyond the vehicle's data: an empty range
			if q.From != nil {
				out.To = out.From
			} else {
				out.From = out.To
			}
		}
		out.Width = ChooseWidth(out.From, out.To, q.Loc, q.MaxPoints)
		// Only the vehicle's own time span can hold records: the calendar bounds need cover
		// no more (a week fallback over ten thousand years would be half a million).
		lo, hi := later(out.From, v.FirstTimestamp), earlier(out.To, v.LastTimestamp)
		if hi.Before(lo) {
			return nil
		}
		out.Buckets, err = s.buckets(ctx, tx, v.VehicleKey, q, out.Width, lo, hi)
		return err
	})
	return out, database.Unavailable(err)
}

// The aggregates of the samples by bucket, in the types bucketAggregate scans. soc's sum as a
// bigint would be a numeric (several times slower to add up); float8 is exact far beyond any
// real sum of socs.
const rawAggregates = `count(*), min("timestamp"), max("timestamp"),
	count(speed), min(speed), max(speed), COALESCE(sum(speed), 0),
	min("timestamp") FILTER (WHERE speed IS NOT NULL), max("timestamp") FILTER (WHERE speed IS NOT NULL),
	min(odometer), max(odometer), sum(odometer), min(soc)::float8, max(soc)::float8, sum(soc)::float8, min(elevation), max(elevation), sum(elevation)`

// aggregateNames names rawAggregates' columns.
const aggregateNames = `n, ts_min, ts_max, speed_n, speed_min, speed_max, speed_sum, speed_first_ts, speed_last_ts,
	odometer_min, odometer_max, odometer_sum, soc_min, soc_max, soc_sum, elevation_min, elevation_max, elevation_sum`

// buckets aggregates [from, to] of one vehicle. A series whose buckets hold whole hours or
// whole five minutes is folded here from that rollup's rows and the samples at its ragged ends,
// and one of buckets under a minute from its samples (foldRollup). One-minute buckets, and
// calendar buckets that no rollup fits, sum up the samples in PostgreSQL; their first and last
// values are then looked up among the samples (edgeValues), at most four primary key lookups
// per bucket.
func (s *Store) buckets(ctx context.Context, tx pgx.Tx, key int32, q SeriesQuery, width time.Duration, from, to time.Time) ([]Bucket, error) {
	var (
		args     sqlArgs
		k        = args.add(key)
		bounds   []time.Time // day and week buckets: their starts, computed here in the request's zone
		bucketOf func(col string) string
		number   = "b" // the bucket's number, as bucketAggregate.B holds it, from b
		level    = levelHours
	)
	switch {
	case width >= Day:
		bounds = calendarBounds(from, to, q.Loc, width)
		level = alignment(bounds)
	case width < time.Hour && width%fiveMinutes == 0:
		level = levelFives
	case width < time.Hour:
		level = levelRaw
	}
	capacity := int(min(BucketCount(from, to, q.Loc, width), 1<<16))
	// Buckets under a minute hold a sample or two each (the bench's vehicles have one every
	// 8.5 s on average), so the samples are folded as they come, each its own first and last
	// value: grouped in PostgreSQL, every bucket's edges were then looked up, most often the very
	// row it grouped (unloaded, the mix's 18 such requests: 85.6 ms in sum against 96.1 ms).
	// One-minute buckets hold several and still group there, which was faster (their 5
	// requests: 28.3 ms against 30.9 ms folded); so do calendar buckets in a zone whose
	// midnights are not whole five minutes (local mean time before 1900).
	if level != levelRaw || (bounds == nil && width < time.Minute) {
		aggs, err := foldRollup(ctx, tx, key, level, width, bounds, from, to, capacity)
		if err != nil {
			return nil, err
		}
		return toBuckets(aggs, q.Fields, width, bounds), nil
	}
	if bounds != nil {
		b := args.add(bounds)
		bucketOf = func(col string) string { return "width_bucket(" + col + ", " + b + "::timestamptz[])::bigint" }
	} else {
		// date_bin groups by a timestamp, where the bucket's number computed for every row took
		// numeric arithmetic (extract returns a numeric): the whole span of a 1M-row vehicle
		// in 673 buckets, 12 ms before, 8 ms. Every width divides a day, so buckets from
		// 2000-01-01 are aligned as from the epoch; only each bucket's number is computed.
		w := args.add(width.Microseconds())
		bucketOf = func(col string) string {
			return "date_bin(" + w + "::bigint * interval '1 microsecond', " + col + ", '2000-01-01 00:00:00+00')"
		}
		number = "(extract(epoch FROM b) * 1000000)::bigint / " + w
	}
	end := to.Add(time.Microsecond) // inclusive to half-open: timestamps are whole microseconds
	sql := "SELECT " + number + ", " + aggregateNames + " FROM (SELECT " + bucketOf(`"timestamp"`) + ", " + rawAggregates +
		" FROM samples WHERE vehicle_key = " + k + span{&from, &end}.conds(`"timestamp"`, &args) + " GROUP BY 1) a (b, " + aggregateNames + ") ORDER BY b"
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("series query: %w", err)
	}
	aggs, err := scanAggregates(rows, capacity)
	if err != nil {
		return nil, fmt.Errorf("series query: %w", err)
	}
	if err := edgeValues(ctx, tx, key, aggs); err != nil {
		return nil, err
	}
	return toBuckets(aggs, q.Fields, width, bounds), nil
}

// toBuckets turns the aggregates into the answer's buckets, with the fields asked for.
func toBuckets(aggs []bucketAggregate, fields []string, width time.Duration, bounds []time.Time) []Bucket {
	// One allocation for every bucket's figures, one for their pointers: a response of 1,000
	// buckets made 5,000 small objects for the garbage collector before.
	nf := len(fields)
	stats, ptrs := make([]Stats, len(aggs)*nf), make([]*Stats, len(aggs)*nf)
	out := make([]Bucket, 0, len(aggs))
	for i := range aggs {
		a := &aggs[i]
		if a.N == 0 {
			continue // a rollup range that held no rows (cannot happen; the rollups keep no empty rows)
		}
		base := i * nf
		bk := Bucket{Count: a.N, Stats: ptrs[base : base+nf : base+nf]}
		if bounds != nil {
			bk.Start = bounds[a.B-1]
		} else {
			bk.Start = time.UnixMicro(a.B * width.Microseconds()).UTC()
		}
		for j, f := range fields {
			st := &stats[base+j]
			switch f {
			case "speed":
				if a.SpeedN == 0 {
					continue // no speed in the bucket: null
				}
				*st = Stats{Min: a.SpeedMin.Float64, Max: a.SpeedMax.Float64, Avg: a.SpeedSum / float64(a.SpeedN), First: a.SpeedFirst, Last: a.SpeedLast}
			case "odometer":
				*st = Stats{Min: a.OdometerMin, Max: a.OdometerMax, Avg: a.OdometerSum / float64(a.N), First: a.First.odometer, Last: a.Last.odometer}
			case "soc":
				*st = Stats{Min: a.SocMin, Max: a.SocMax, Avg: a.SocSum / float64(a.N), First: a.First.soc, Last: a.Last.soc}
			case "elevation":
				*st = Stats{Min: a.ElevationMin, Max: a.ElevationMax, Avg: a.ElevationSum / float64(a.N), First: a.First.elevation, Last: a.Last.elevation}
			}
			bk.Stats[j] = st
		}
		out = append(out, bk)
	}
	return out
}

// bucketAggregate is one bucket's figures: a row of the series query, or folded from the
// hour rollup's rows.
type bucketAggregate struct {
	B                         int64
	N                         int64
	TsMin, TsMax              time.Time
	SpeedN                    int64
	SpeedMin, SpeedMax        pgtype.Float8 // value types: no allocation a row
	SpeedSum                  float64
	SpeedFirstTs, SpeedLastTs pgtype.Timestamptz
	OdometerMin, OdometerMax  float64
	OdometerSum               float64
	SocMin, SocMax, SocSum    float64
	ElevationMin              float64
	ElevationMax              float64
	ElevationSum              float64
	// The values at the bucket's first and last row (speed: with a speed).
	First, Last           edgeRow
	SpeedFirst, SpeedLast float64
}

// scanAggregates reads the series query's rows by position, without the reflection of
// pgx.RowToStructByPos (a fifth of the server's time under the series mix) or pgx's Scan
// (rawScanner).
func scanAggregates(rows pgx.Rows, buckets int) ([]bucketAggregate, error) {
	defer rows.Close()
	var (
		out = make([]bucketAggregate, 0, buckets)
		a   bucketAggregate // scanned into in place: a variable in the loop would be allocated a row
	)
	// One scanner, its destinations set once, for every row: a variadic call would allocate a row.
	sc := newRawScanner(&a.B, &a.N, &a.TsMin, &a.TsMax, &a.SpeedN, &a.SpeedMin, &a.SpeedMax, &a.SpeedSum,
		&a.SpeedFirstTs, &a.SpeedLastTs, &a.OdometerMin, &a.OdometerMax, &a.OdometerSum,
		&a.SocMin, &a.SocMax, &a.SocSum, &a.ElevationMin, &a.ElevationMax, &a.ElevationSum)
	for rows.Next() {
		if err := sc.scan(rows); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// edgeRow is what a bucket's first and last values need of the row at its first or last
// timestamp (a speed edge is the row with a speed, kept apart).
type edgeRow struct {
	odometer, soc, elevation float64
}

// edgeValues fills in the aggregates' first and last values from the rows at the timestamps
// they name, each row read once: the first row with a speed is most often the bucket's first.
func edgeValues(ctx context.Context, tx pgx.Tx, key int32, aggs []bucketAggregate) error {
	var rowKeys []time.Time
	seen := make(map[int64]bool, 2*len(aggs))
	need := func(t time.Time) {
		if us := t.UnixMicro(); !seen[us] {
			seen[us] = true
			rowKeys = append(rowKeys, t)
		}
	}
	for i := range aggs {
		a := &aggs[i]
		need(a.TsMin)
		need(a.TsMax)
		if a.SpeedFirstTs.Valid {
			need(a.SpeedFirstTs.Time)
			need(a.SpeedLastTs.Time)
		}
	}
	if len(rowKeys) == 0 {
		return nil
	}
	// The array goes in through a subquery: given as a value, the planner estimates every
	// element against the column's statistics; as an InitPlan's result it is unknown at
	// planning, and the plan is the same primary key scan. Planning, under the series mix at
	// 10M rows (pg_stat_statements): 0.36 ms a query before, 0.14 ms so.
	rows, err := tx.Query(ctx, `SELECT "timestamp", speed, odometer, soc::float8, elevation FROM samples
		WHERE vehicle_key = $1 AND "timestamp" = ANY((SELECT $2::timestamptz[])::timestamptz[])`, key, rowKeys)
	if err != nil {
		return fmt.Errorf("series edges: %w", err)
	}
	defer rows.Close()
	var (
		vals   = make(map[int64]edgeRow, len(rowKeys))
		speeds = make(map[int64]float64, len(rowKeys)) // at the timestamps with a speed
		t      time.Time
		speed  pgtype.Float8
		v      edgeRow
	)
	sc := newRawScanner(&t, &speed, &v.odometer, &v.soc, &v.elevation)
	for rows.Next() {
		if err := sc.scan(rows); err != nil {
			return fmt.Errorf("series edges: %w", err)
		}
		vals[t.UnixMicro()] = v
		if speed.Valid {
			speeds[t.UnixMicro()] = speed.Float64
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("series edges: %w", err)
	}
	for i := range aggs {
		a := &aggs[i]
		a.First, a.Last = vals[a.TsMin.UnixMicro()], vals[a.TsMax.UnixMicro()]
		if a.SpeedFirstTs.Valid {
			a.SpeedFirst, a.SpeedLast = speeds[a.SpeedFirstTs.Time.UnixMicro()], speeds[a.SpeedLastTs.Time.UnixMicro()]
		}
	}
	return nil
}

// alignment is the coarsest rollup whose rows never straddle one of the bounds: hours when
// every bound is on a whole UTC hour, five minutes when on a whole five minutes (every zone's
// offset today is a whole quarter hour; not some places' local mean time before 1900), else the
// raw samples.
func alignment(bounds []time.Time) int {
	level := levelHours
	for _, b := range bounds {
		switch {
		case !b.Truncate(fiveMinutes).Equal(b):
			return levelRaw
		case !b.Truncate(time.Hour).Equal(b):
			level = levelFives
		}
	}
	return level
}

// calendarBounds are the starts of the day or week buckets that [from, to] touches, in loc.
// width_bucket numbers a timestamp by the last start at or before it.
func calendarBounds(from, to time.Time, loc *time.Location, w time.Duration) []time.Time {
	var out []time.Time
	step := 1
	if w == Week {
		step = 7
	}
	start := BucketStart(from, loc, w).In(loc)
	for d := start; !d.After(to); {
		out = append(out, d.UTC())
		d = time.Date(d.Year(), d.Month(), d.Day()+step, 0, 0, 0, 0, loc)
	}
	return out
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
