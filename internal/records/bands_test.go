package records

import (
	"math"
	"math/rand/v2"
	"testing"
)

// Whatever the cuts, the bands of an export (bandsFrom) hold every value once, and those of a
// cursor page (bandsAfter) every value from the cursor's on (or past it, its own being
// seekTieSQL's), once:
// consecutive in the order's direction, none empty, the last open. A band that leaves out a
// value loses its rows; two that share one give them twice.
func TestBandsCoverEveryValueOnce(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	values := []float64{0, 1, -1, 0.5, 99.5, 100, -40.25, 1e16, 1e16 + 2, 1e300, -1e300, math.MaxFloat64, -math.MaxFloat64}
	pick := func() float64 {
		if rng.IntN(2) == 0 {
			return values[rng.IntN(len(values))]
		}
		return math.Floor(rng.NormFloat64() * 50)
	}
	for i := range 5000 {
		cuts := make([]float64, rng.IntN(12))
		for j := range cuts {
			cuts[j] = pick()
		}
		v, desc := pick(), i%2 == 1
		check := func(name string, bands [][2]float64, from float64) {
			t.Helper()
			if len(bands) == 0 && name == "bandsAfter" && !desc && from == math.Inf(1) {
				return // nothing is past the largest double
			}
			if len(bands) == 0 {
				t.Fatalf("%s(%v, %v, desc %v): no bands", name, cuts, v, desc)
			}
			for k, b := range bands {
				if !(b[0] < b[1]) {
					t.Fatalf("%s(%v, %v, desc %v): band %d %v is empty", name, cuts, v, desc, k, b)
				}
				if k > 0 && (!desc && bands[k-1][1] != b[0] || desc && b[1] != bands[k-1][0]) {
					t.Fatalf("%s(%v, %v, desc %v): bands %d and %d do not meet: %v", name, cuts, v, desc, k-1, k, bands)
				}
			}
			first, last := bands[0], bands[len(bands)-1]
			switch {
			case !desc && (first[0] != from || last[1] != math.Inf(1)):
				t.Fatalf("%s(%v, %v): ascending bands %v do not run from %v to +Inf", name, cuts, v, bands, from)
			case desc && (last[0] != math.Inf(-1) || first[1] != from):
				t.Fatalf("%s(%v, %v): descending bands %v do not run from below %v down to -Inf", name, cuts, v, bands, from)
			}
		}
		// With ties, from v on; without, past v: ascending from the next double up, descending
		// from below v.
		if desc {
			check("bandsAfter", bandsAfter(cuts, v, desc, true), math.Nextafter(v, math.Inf(1)))
			check("bandsAfter", bandsAfter(cuts, v, desc, false), v)
		} else {
			check("bandsAfter", bandsAfter(cuts, v, desc, true), v)
			check("bandsAfter", bandsAfter(cuts, v, desc, false), math.Nextafter(v, math.Inf(1)))
		}
		from := math.Inf(-1)
		if desc {
			from = math.Inf(1)
		}
		check("bandsFrom", bandsFrom(cuts, desc), from)
	}
}
