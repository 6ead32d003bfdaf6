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

// seriesColumns are the SQL expressions of the series fields, as float8.
var seriesColumns = map[string]string{
	"speed": "speed", "odometer": "odometer", "soc": "soc::float8", "elevation": "elevation",
}

// Series aggregates one vehicle's records into buckets. Unknown vehicle: NotFound.
func (s *Store) Series(ctx context.Context, q SeriesQuery) (Series, error) {
	out := Series{VehicleID: q.VehicleID, Fields: q.Fields}
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
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
		out.Buckets, err = s.buckets(ctx, tx, q, out.Width, lo, hi)
		return err
	})
	return out, database.Unavailable(err)
}

func (s *Store) buckets(ctx context.Context, tx pgx.Tx, q SeriesQuery, width time.Duration, from, to time.Time) ([]Bucket, error) {
	args := []any{q.VehicleID, from, to}
	param := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	var (
		bucket string
		bounds []time.Time // day and week buckets: their starts, computed here in the request's zone
	)
	if width >= Day {
		bounds = calendarBounds(from, to, q.Loc, width)
		bucket = `width_bucket("timestamp", ` + param(bounds) + `::timestamptz[])`
	} else {
		bucket = `floor(extract(epoch FROM "timestamp") * 1000000 / ` + param(width.Microseconds()) + `)::bigint`
	}
	var cols strings.Builder
	for _, f := range q.Fields {
		c := seriesColumns[f]
		fmt.Fprintf(&cols, `, min(%[1]s), max(%[1]s), avg(%[1]s),`+
			` (array_agg(%[1]s ORDER BY "timestamp") FILTER (WHERE %[1]s IS NOT NULL))[1],`+
			` (array_agg(%[1]s ORDER BY "timestamp" DESC) FILTER (WHERE %[1]s IS NOT NULL))[1]`, c)
	}
	sql := `SELECT ` + bucket + `::bigint AS b, count(*)` + cols.String() +
		` FROM vehicle_data WHERE vehicle_id = $1 AND "timestamp" >= $2 AND "timestamp" <= $3 GROUP BY 1 ORDER BY 1`
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("series query: %w", err)
	}
	defer rows.Close()
	var (
		out  []Bucket
		b    int64
		vals = make([]pgtype.Float8, 5*len(q.Fields))
		dest = make([]any, 2+len(vals))
	)
	for rows.Next() {
		bk := Bucket{Stats: make([]*Stats, len(q.Fields))}
		dest[0], dest[1] = &b, &bk.Count
		for i := range vals {
			dest[2+i] = &vals[i]
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("series scan: %w", err)
		}
		if bounds != nil {
			bk.Start = bounds[b-1]
		} else {
			bk.Start = time.UnixMicro(b * width.Microseconds()).UTC()
		}
		for i := range q.Fields {
			v := vals[5*i : 5*i+5]
			if v[0].Valid {
				bk.Stats[i] = &Stats{Min: v[0].Float64, Max: v[1].Float64, Avg: v[2].Float64, First: v[3].Float64, Last: v[4].Float64}
			}
		}
		out = append(out, bk)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("series rows: %w", err)
	}
	return out, nil
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
