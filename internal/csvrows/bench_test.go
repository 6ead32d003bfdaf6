package csvrows

import (
	"bytes"
	"fmt"
	"io"
	"testing"
	"time"
)

// benchFile is a file like the real ones: header, then rows with 1 to 3 fraction digits,
// NULL speed and shift state while parked.
func benchFile(rows int) []byte {
	var b bytes.Buffer
	b.WriteString(header)
	t := time.Date(2022, 7, 12, 16, 0, 0, 0, time.UTC)
	shift := []string{"D", "D", "D", "R", "N", "P"}
	for i := range rows {
		t = t.Add(time.Duration(1000+i%7919) * time.Millisecond)
		ts := t.Format("2006-01-02 15:04:05.999")
		if i%10 == 0 {
			fmt.Fprintf(&b, "%s,NULL,%.1f,%d,%d,NULL\n", ts, 40800+float64(i)/10, 20+i%80, i%300-50)
			continue
		}
		fmt.Fprintf(&b, "%s,%d,%.1f,%d,%d,%s\n", ts, i%130, 40800+float64(i)/10, 20+i%80, i%300-50, shift[i%len(shift)])
	}
	return b.Bytes()
}

func BenchmarkReader(b *testing.B) {
	const rows = 100_000
	data := benchFile(rows)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r := NewReader(bytes.NewReader(data), "veh1")
		if err := r.ReadHeader(); err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			_, rowErr, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil || rowErr != nil {
				b.Fatalf("row %d: %v %+v", n, err, rowErr)
			}
			n++
		}
		if n != rows {
			b.Fatalf("read %d rows, want %d", n, rows)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows), "ns/row")
}
