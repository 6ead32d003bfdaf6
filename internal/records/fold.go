package records

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// foldRollup aggregates a series whose buckets hold whole rows of a rollup level: whole UTC
// hours (widths of an hour and more, and days and weeks in zones whose midnights are whole
// UTC hours) or whole five minutes (widths of 5 to 30 minutes, and days and weeks in the other
// zones). It reads the level's rows of the range's whole hours or five minutes and the samples
// of its ragged ends, and folds them into buckets here: each row's first and last values come
// with it (both rollups keep them), so the first and last of a bucket are those of its
// earliest and latest row, and nothing is looked up afterwards.
//
// PostgreSQL's grouping of the same rows cost more than the rows themselves: the whole span of
// a 1M-row vehicle (2,372 hours in 673 buckets of 6 hours) took 4 ms to group with the 18
// aggregates and 1.4 ms with one; the hour edges were a second query of the same rows (3.4 ms),
// and the ends' edges a third.
//
// The ends are read as coverRange splits them: under an hour each side in five-minute rows,
// under five minutes in samples; every other row is an hour (or five minutes). At levelRaw
// (buckets under a minute) every row is a sample.
func foldRollup(ctx context.Context, tx pgx.Tx, key int32, level int, width time.Duration, bounds []time.Time, from, to time.Time, capacity int) ([]bucketAggregate, error) {
	var (
		args  sqlArgs
		k     = args.add(key)
		c     = coverRange(&from, &to, level)
		parts []string
	)
	// A sample in the rollup rows' shape: one row, its values its own edges.
	raw := func(sp span) string {
		return `SELECT "timestamp", 1, "timestamp", "timestamp", (speed IS NOT NULL)::integer, speed, speed, COALESCE(speed, 0),
			CASE WHEN speed IS NOT NULL THEN "timestamp" END, CASE WHEN speed IS NOT NULL THEN "timestamp" END, speed, speed,
			odometer, odometer, odometer, odometer, odometer, soc::float8, soc::float8, soc::float8, soc::float8, soc::float8,
			elevation, elevation, elevation, elevation, elevation
			FROM samples WHERE vehicle_key = ` + k + sp.conds(`"timestamp"`, &args)
	}
	rollup := func(table string) func(span) string {
		return func(sp span) string {
			return `SELECT bucket, n, ts_min, ts_max, speed_n, speed_min, speed_max, speed_sum,
				speed_first_ts, speed_last_ts, speed_first, speed_last,
				odometer_min, odometer_max, odometer_sum, odometer_first, odometer_last,
				soc_min::float8, soc_max::float8, soc_sum::float8, soc_first::float8, soc_last::float8,
				elevation_min, elevation_max, elevation_sum, elevation_first, elevation_last
				FROM ` + table + ` WHERE vehicle_key = ` + k + sp.conds("bucket", &args)
		}
	}
	// The parts in time order (the spans are disjoint), so that the rows mostly come in order
	// and the folder needs no map.
	type part struct {
		sp  span
		sql func(span) string
	}
	var ps []part
	for _, sp := range c.raw {
		ps = append(ps, part{sp, raw})
	}
	for _, sp := range c.fives {
		ps = append(ps, part{sp, rollup("sample_five_minutes")})
	}
	for _, sp := range c.hours {
		ps = append(ps, part{sp, rollup("sample_hours")})
	}
	slices.SortFunc(ps, func(x, y part) int { return x.sp.lo.Compare(*y.sp.lo) })
	for _, p := range ps {
		parts = append(parts, p.sql(p.sp))
	}
	// No ORDER BY: sorting the rows took more than half of the query's time (the whole span of
	// a 1M-row vehicle, 2,668 rows: 2.5 ms sorted, 1.1 ms not, at 10M rows), and the planner
	// reads the rollup with a bitmap scan, in the table's order, which updates to a rollup row
	// (a later upload into it) break. The folder takes rows in any order.
	sql := parts[0]
	for _, p := range parts[1:] {
		sql += " UNION ALL " + p
	}
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("series rollup: %w", err)
	}
	defer rows.Close()

	var (
		f = folder{width: width, bounds: bounds, out: make([]bucketAggregate, 0, capacity)}
		r struct { // one row, scanned in place
			at                    time.Time
			a                     bucketAggregate
			speedFirst, speedLast pgtype.Float8
		}
	)
	a := &r.a
	sc := newRawScanner(&r.at, &a.N, &a.TsMin, &a.TsMax, &a.SpeedN, &a.SpeedMin, &a.SpeedMax, &a.SpeedSum,
		&a.SpeedFirstTs, &a.SpeedLastTs, &r.speedFirst, &r.speedLast,
		&a.OdometerMin, &a.OdometerMax, &a.OdometerSum, &a.First.odometer, &a.Last.odometer,
		&a.SocMin, &a.SocMax, &a.SocSum, &a.First.soc, &a.Last.soc,
		&a.ElevationMin, &a.ElevationMax, &a.ElevationSum, &a.First.elevation, &a.Last.elevation)
	for rows.Next() {
		if err := sc.scan(rows); err != nil {
			return nil, fmt.Errorf("series rollup: %w", err)
		}
		a.SpeedFirst, a.SpeedLast = r.speedFirst.Float64, r.speedLast.Float64
		f.add(r.at, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("series rollup: %w", err)
	}
	return f.result(), nil
}

// folder folds rows (rollup rows, or samples in their shape) into buckets, in whatever order
// they come. Rows mostly come in time order, so a row most often belongs to the last bucket
// or starts the next one; only once one comes out of order is a map of the buckets built.
type folder struct {
	width    time.Duration
	bounds   []time.Time // calendar buckets: their starts; nil for buckets of width
	next     int         // calendar buckets: the index of the next bucket's start after the last row's
	out      []bucketAggregate
	byNumber map[int64]int // bucket number to its place in out, once out is not in order
}

// number is the bucket of a row that starts at at, as the SQL path numbers it: by width
// since the epoch, or 1-based into bounds (width_bucket's).
func (f *folder) number(at time.Time) int64 {
	if f.bounds == nil {
		return floorDiv(at.UnixMicro(), f.width.Microseconds())
	}
	if f.next > 0 && at.Before(f.bounds[f.next-1]) { // before the last row's bucket: search again
		f.next = sort.Search(len(f.bounds), func(i int) bool { return f.bounds[i].After(at) })
	}
	for f.next < len(f.bounds) && !at.Before(f.bounds[f.next]) {
		f.next++
	}
	return int64(f.next)
}

// add folds the row at at (its aggregates in r) into its bucket.
func (f *folder) add(at time.Time, r *bucketAggregate) {
	b, n := f.number(at), len(f.out)
	switch {
	case n > 0 && f.out[n-1].B == b:
		f.out[n-1].merge(r)
		return
	case f.byNumber == nil && (n == 0 || f.out[n-1].B < b):
		r.B = b
		f.out = append(f.out, *r)
		return
	}
	if f.byNumber == nil {
		if i, ok := slices.BinarySearchFunc(f.out, b, func(x bucketAggregate, b int64) int { return cmp.Compare(x.B, b) }); ok {
			f.out[i].merge(r)
			return
		}
		f.byNumber = make(map[int64]int, cap(f.out))
		for i := range f.out {
			f.byNumber[f.out[i].B] = i
		}
	}
	if i, ok := f.byNumber[b]; ok {
		f.out[i].merge(r)
		return
	}
	r.B = b
	f.byNumber[b] = n
	f.out = append(f.out, *r)
}

// result returns the buckets in order.
func (f *folder) result() []bucketAggregate {
	if f.byNumber != nil {
		slices.SortFunc(f.out, func(x, y bucketAggregate) int { return cmp.Compare(x.B, y.B) })
	}
	return f.out
}

// merge adds row r to a, in either order: the first and last values are those of whichever
// holds the earlier or the later timestamp (timestamps are unique per vehicle: never a tie).
func (a *bucketAggregate) merge(r *bucketAggregate) {
	a.N += r.N
	if r.TsMin.Before(a.TsMin) {
		a.TsMin, a.First = r.TsMin, r.First
	}
	if r.TsMax.After(a.TsMax) {
		a.TsMax, a.Last = r.TsMax, r.Last
	}
	if r.SpeedN > 0 {
		if a.SpeedN == 0 {
			a.SpeedMin, a.SpeedMax = r.SpeedMin, r.SpeedMax
			a.SpeedFirstTs, a.SpeedFirst = r.SpeedFirstTs, r.SpeedFirst
			a.SpeedLastTs, a.SpeedLast = r.SpeedLastTs, r.SpeedLast
		} else {
			a.SpeedMin.Float64, a.SpeedMax.Float64 = min(a.SpeedMin.Float64, r.SpeedMin.Float64), max(a.SpeedMax.Float64, r.SpeedMax.Float64)
			if r.SpeedFirstTs.Time.Before(a.SpeedFirstTs.Time) {
				a.SpeedFirstTs, a.SpeedFirst = r.SpeedFirstTs, r.SpeedFirst
			}
			if r.SpeedLastTs.Time.After(a.SpeedLastTs.Time) {
				a.SpeedLastTs, a.SpeedLast = r.SpeedLastTs, r.SpeedLast
			}
		}
		a.SpeedN += r.SpeedN
		a.SpeedSum += r.SpeedSum
	}
	a.OdometerMin, a.OdometerMax, a.OdometerSum = min(a.OdometerMin, r.OdometerMin), max(a.OdometerMax, r.OdometerMax), a.OdometerSum+r.OdometerSum
	a.SocMin, a.SocMax, a.SocSum = min(a.SocMin, r.SocMin), max(a.SocMax, r.SocMax), a.SocSum+r.SocSum
	a.ElevationMin, a.ElevationMax, a.ElevationSum = min(a.ElevationMin, r.ElevationMin), max(a.ElevationMax, r.ElevationMax), a.ElevationSum+r.ElevationSum
}
