package records

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// TestFolderAnyOrder folds random samples, in time order and shuffled, into buckets of a width
// and into calendar buckets, and checks both against each bucket's figures computed from its
// samples directly. The series query reads the hours without an ORDER BY, so rows come in the
// table's order, which updates of hour rows make other than time order.
func TestFolderAnyOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	base := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	for round := range 200 {
		n := 1 + rng.IntN(300)
		seen := map[int64]bool{}
		var rows []bucketAggregate
		for len(rows) < n {
			at := base.Add(time.Duration(rng.Int64N(int64(30 * 24 * time.Hour)))).Truncate(time.Microsecond)
			if seen[at.UnixMicro()] {
				continue
			}
			seen[at.UnixMicro()] = true
			rows = append(rows, sampleRow(rng, at))
		}
		width := BucketWidths[10+rng.IntN(5)] // an hour to 12 hours
		var bounds []time.Time
		if round%2 == 1 {
			loc := time.FixedZone("", 3600*(rng.IntN(25)-12))
			bounds = calendarBounds(base, base.Add(31*24*time.Hour), loc, Day)
		}
		number := func(at time.Time) int64 {
			if bounds == nil {
				return floorDiv(at.UnixMicro(), width.Microseconds())
			}
			var k int64
			for _, b := range bounds {
				if !at.Before(b) {
					k++
				}
			}
			return k
		}
		want := bruteFold(rows, number)

		shuffled := slices.Clone(rows)
		if round%4 < 2 {
			slices.SortFunc(shuffled, func(x, y bucketAggregate) int { return x.TsMin.Compare(y.TsMin) })
		} else {
			rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		}
		f := folder{width: width, bounds: bounds}
		for i := range shuffled {
			r := shuffled[i]
			f.add(r.TsMin, &r)
		}
		got := f.result()
		if len(got) != len(want) {
			t.Fatalf("round %d: %d buckets, want %d", round, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("round %d, bucket %d:\n got %+v\nwant %+v", round, i, got[i], want[i])
			}
		}
	}
}

// sampleRow is one sample in the hour rows' shape: its values are its own edges.
func sampleRow(rng *rand.Rand, at time.Time) bucketAggregate {
	r := bucketAggregate{N: 1, TsMin: at, TsMax: at}
	if rng.IntN(3) > 0 {
		s := float64(rng.IntN(130))
		r.SpeedN, r.SpeedSum, r.SpeedFirst, r.SpeedLast = 1, s, s, s
		r.SpeedMin, r.SpeedMax = pgtype.Float8{Float64: s, Valid: true}, pgtype.Float8{Float64: s, Valid: true}
		ts := pgtype.Timestamptz{Time: at, Valid: true}
		r.SpeedFirstTs, r.SpeedLastTs = ts, ts
	}
	e := edgeRow{odometer: float64(rng.IntN(100000)), soc: float64(rng.IntN(101)), elevation: float64(rng.IntN(400) - 50)}
	r.First, r.Last = e, e
	r.OdometerMin, r.OdometerMax, r.OdometerSum = e.odometer, e.odometer, e.odometer
	r.SocMin, r.SocMax, r.SocSum = e.soc, e.soc, e.soc
	r.ElevationMin, r.ElevationMax, r.ElevationSum = e.elevation, e.elevation, e.elevation
	return r
}

// bruteFold computes each bucket from its samples: counts and sums, extremes, and the values
// of its earliest and latest sample (and sample with a speed).
func bruteFold(rows []bucketAggregate, number func(time.Time) int64) []bucketAggregate {
	byB := map[int64][]bucketAggregate{}
	for _, r := range rows {
		b := number(r.TsMin)
		byB[b] = append(byB[b], r)
	}
	var out []bucketAggregate
	for b, rs := range byB {
		slices.SortFunc(rs, func(x, y bucketAggregate) int { return x.TsMin.Compare(y.TsMin) })
		a := bucketAggregate{B: b, TsMin: rs[0].TsMin, TsMax: rs[len(rs)-1].TsMax, First: rs[0].First, Last: rs[len(rs)-1].Last,
			OdometerMin: rs[0].OdometerMin, OdometerMax: rs[0].OdometerMax, SocMin: rs[0].SocMin, SocMax: rs[0].SocMax,
			ElevationMin: rs[0].ElevationMin, ElevationMax: rs[0].ElevationMax}
		for _, r := range rs {
			a.N += r.N
			a.OdometerMin, a.OdometerMax, a.OdometerSum = min(a.OdometerMin, r.OdometerMin), max(a.OdometerMax, r.OdometerMax), a.OdometerSum+r.OdometerSum
			a.SocMin, a.SocMax, a.SocSum = min(a.SocMin, r.SocMin), max(a.SocMax, r.SocMax), a.SocSum+r.SocSum
			a.ElevationMin, a.ElevationMax, a.ElevationSum = min(a.ElevationMin, r.ElevationMin), max(a.ElevationMax, r.ElevationMax), a.ElevationSum+r.ElevationSum
			if r.SpeedN == 0 {
				continue
			}
			if a.SpeedN == 0 {
				a.SpeedMin, a.SpeedMax, a.SpeedFirstTs, a.SpeedFirst = r.SpeedMin, r.SpeedMax, r.SpeedFirstTs, r.SpeedFirst
			}
			a.SpeedMin.Float64, a.SpeedMax.Float64 = min(a.SpeedMin.Float64, r.SpeedMin.Float64), max(a.SpeedMax.Float64, r.SpeedMax.Float64)
			a.SpeedN += r.SpeedN
			a.SpeedSum += r.SpeedSum
			a.SpeedLastTs, a.SpeedLast = r.SpeedLastTs, r.SpeedLast
		}
		out = append(out, a)
	}
	slices.SortFunc(out, func(x, y bucketAggregate) int { return int(x.B - y.B) })
	return out
}
