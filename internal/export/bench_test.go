package export

import (
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/vehicle-data/vehicle-data/internal/records"
)

const benchRows = 100_000

// benchRecords resembles real telemetry: a third parked (nulls), the rest
// driving with fractional odometer readings.
func benchRecords() []records.Record {
	rng := rand.New(rand.NewPCG(42, 42))
	recs := make([]records.Record, benchRows)
	start := time.Date(2022, 7, 12, 16, 42, 25, 0, time.UTC)
	shift := []string{"D", "R", "N", "P"}
	for i := range recs {
		r := records.Record{
			ID:        int64(i + 1),
			VehicleID: "06ab31a9-b35d-4e47-8e44-9c35feb1bfae",
			Timestamp: start.Add(time.Duration(i)*2500*time.Millisecond + time.Duration(rng.IntN(1000))*time.Millisecond),
			Odometer:  40800 + float64(i/10)/10,
			SOC:       int16(rng.IntN(101)),
			Elevation: float64(rng.IntN(400) - 20),
		}
		if i%3 != 0 {
			r.Speed = ptr(float64(rng.IntN(130)))
			r.ShiftState = &shift[rng.IntN(len(shift))]
		}
		recs[i] = r
	}
	return recs
}

// countWriter discards output and counts it, for MB/s.
type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// BenchmarkEncode encodes 100,000 records per op: allocs/op is per export.
func BenchmarkEncode(b *testing.B) {
	recs := benchRecords()
	for _, format := range Formats {
		b.Run(string(format), func(b *testing.B) {
			// One untimed run measures the output size for MB/s.
			size := &countWriter{}
			encodeBench(b, newEncoder(b, format, size), recs)
			b.SetBytes(size.n)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				encodeBench(b, newEncoder(b, format, io.Discard), recs)
			}
			b.ReportMetric(float64(benchRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

func encodeBench(b *testing.B, e Encoder, recs []records.Record) {
	b.Helper()
	defer e.Close()
	if err := e.Begin(); err != nil {
		b.Fatal(err)
	}
	for i := range recs {
		if err := e.Write(&recs[i]); err != nil {
			b.Fatal(err)
		}
	}
	if err := e.End(); err != nil {
		b.Fatal(err)
	}
}
