package export

import (
	"io"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/vehicle-data/vehicle-data/internal/records"
)

func ptr[T any](v T) *T { return &v }

// newEncoder is New for a format the test knows to exist.
func newEncoder(tb testing.TB, f Format, w io.Writer) Encoder {
	tb.Helper()
	e, err := New(f, w)
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

// jsonRecord is how the list endpoint serialises a record with encoding/json;
// the JSON encoders must produce the same bytes.
type jsonRecord struct {
	ID         int64     `json:"id"`
	VehicleID  string    `json:"vehicle_id"`
	Timestamp  time.Time `json:"timestamp"`
	Speed      *float64  `json:"speed"`
	Odometer   float64   `json:"odometer"`
	SOC        int16     `json:"soc"`
	Elevation  float64   `json:"elevation"`
	ShiftState *string   `json:"shift_state"`
}

func toJSONRecord(r *records.Record) jsonRecord {
	return jsonRecord{
		ID: r.ID, VehicleID: r.VehicleID, Timestamp: r.Timestamp.UTC(), Speed: r.Speed,
		Odometer: r.Odometer, SOC: r.SOC, Elevation: r.Elevation, ShiftState: r.ShiftState,
	}
}

// edgeFloats are values where float formatting changes shape.
var edgeFloats = []float64{
	0, math.Copysign(0, -1), 1, -1, 0.1, 0.2, 0.3, 1.5, 55, 1234.5, 40800.6, -12.5,
	1e-6, 9.999999999999999e-7, 1e-7, 1.5e-7, 1e-9, 1.2345e-10, 1e-100, -1e-7,
	1e20, 1e21, 9.999999999999999e20, 1.0000000000000001e21, 123456789012345678901.0, -1e21, 1e22,
	math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64, 2.2250738585072014e-308,
	math.MaxInt64, 1 << 53, 1<<53 + 1, 100, 1e2, 3.141592653589793,
}

// randomFloat draws a finite float64 of widely varying magnitude.
func randomFloat(rng *rand.Rand) float64 {
	switch rng.IntN(4) {
	case 0:
		return edgeFloats[rng.IntN(len(edgeFloats))]
	case 1: // any bit pattern
		for {
			f := math.Float64frombits(rng.Uint64())
			if isFinite(f) {
				return f
			}
		}
	case 2: // decimals like real telemetry
		return float64(rng.IntN(2_000_000)-1_000_000) / 10
	default: // around the format switch points
		return rng.NormFloat64() * math.Pow(10, float64(rng.IntN(60)-30))
	}
}

// stringPieces build hostile strings: everything JSON, CSV or a header must
// escape, plus non-ASCII and invalid UTF-8.
var stringPieces = []string{
	"a", "Z", "0", " ", "\t", ",", `"`, `\`, "\r", "\n", "\r\n", "\x00", "\x01", "\x1f", "\x7f",
	"\b", "\f", "<", ">", "&", "'", "/", "..", "é", "日本", "😀", "\u2028", "\u2029", "\u202e",
	"\u00a0", "\ufffd", "\xff", "\xc3", "\xe2\x80", "NULL", "null", "=cmd", ";", "%", "*",
}

func randomString(rng *rand.Rand) string {
	var b strings.Builder
	for n := rng.IntN(8); n > 0; n-- {
		if rng.IntN(3) == 0 {
			b.WriteByte(byte(rng.IntN(128)))
			continue
		}
		b.WriteString(stringPieces[rng.IntN(len(stringPieces))])
	}
	return b.String()
}

// randomTime spans years 0001..9999 with any nanosecond.
func randomTime(rng *rand.Rand) time.Time {
	lo := time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	hi := time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC).Unix()
	t := time.Unix(lo+rng.Int64N(hi-lo+1), 0)
	switch rng.IntN(4) {
	case 0: // whole second
	case 1:
		t = t.Add(time.Duration(rng.IntN(1000)) * time.Millisecond)
	case 2:
		t = t.Add(time.Duration(rng.IntN(1_000_000)) * time.Microsecond)
	default:
		t = t.Add(time.Duration(rng.IntN(1_000_000_000)))
	}
	return t
}

func randomRecord(rng *rand.Rand) records.Record {
	r := records.Record{
		ID:        rng.Int64(),
		VehicleID: randomString(rng),
		Timestamp: randomTime(rng),
		Odometer:  randomFloat(rng),
		SOC:       int16(rng.IntN(101)),
		Elevation: randomFloat(rng),
	}
	if rng.IntN(3) > 0 {
		r.Speed = ptr(randomFloat(rng))
	}
	if rng.IntN(3) > 0 {
		r.ShiftState = ptr(randomString(rng))
	}
	return r
}

// plainRecord is a typical row.
func plainRecord(id int64) records.Record {
	return records.Record{
		ID:         id,
		VehicleID:  "06ab31a9-b35d-4e47-8e44-9c35feb1bfae",
		Timestamp:  time.Date(2022, 7, 12, 16, 42, 25, 435_000_000, time.UTC).Add(time.Duration(id) * time.Second),
		Speed:      ptr(37.0),
		Odometer:   40800.6,
		SOC:        58,
		Elevation:  92,
		ShiftState: ptr("D"),
	}
}
