package export

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vehicle-data/vehicle-data/internal/records"
)

// encodeAll runs an encoder over recs and returns its output.
func encodeAll(t *testing.T, newEnc func(io.Writer) Encoder, recs []records.Record) string {
	t.Helper()
	var out bytes.Buffer
	enc := newEnc(&out)
	defer func() {
		if err := enc.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	if err := enc.Begin(); err != nil {
		t.Fatalf("Begin: %v", err)
	}
	for i := range recs {
		if err := enc.Write(&recs[i]); err != nil {
			t.Fatalf("Write(record %d): %v", i, err)
		}
	}
	if err := enc.End(); err != nil {
		t.Fatalf("End: %v", err)
	}
	return out.String()
}

func csvEncoder(w io.Writer) Encoder    { return NewCSV(w) }
func jsonEncoder(w io.Writer) Encoder   { return NewJSON(w) }
func ndjsonEncoder(w io.Writer) Encoder { return NewNDJSON(w) }

func TestCSV(t *testing.T) {
	full := plainRecord(1)
	parked := records.Record{
		ID: 2, VehicleID: "veh,1", Timestamp: time.Date(2022, 7, 12, 18, 5, 17, 400_000_000, time.UTC),
		Odometer: 36684.7, SOC: 88, Elevation: -3,
	}
	odd := records.Record{
		ID: 3, VehicleID: `say "hi"`, Timestamp: time.Date(2024, 6, 1, 14, 0, 0, 0, time.FixedZone("", 2*3600)),
		Speed: ptr(1e-7), Odometer: 1e21, SOC: 100, Elevation: 0.5, ShiftState: ptr("null"),
	}
	tests := []struct {
		name string
		recs []records.Record
		want string
	}{
		{"empty", nil, CSVHeader + "\n"},
		{
			"rows", []records.Record{full, parked, odd},
			CSVHeader + "\n" +
				"1,06ab31a9-b35d-4e47-8e44-9c35feb1bfae,2022-07-12T16:42:26.435Z,37,40800.6,58,92,D\n" +
				`2,"veh,1",2022-07-12T18:05:17.4Z,,36684.7,88,-3,` + "\n" +
				`3,"say ""hi""",2024-06-01T12:00:00Z,1e-7,1e+21,100,0.5,"null"` + "\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := encodeAll(t, csvEncoder, tt.recs); got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

// Every CSV export must read back, cell for cell, with an RFC 4180 reader.
func TestCSVReadsBack(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	recs := make([]records.Record, 5000)
	for i := range recs {
		recs[i] = randomRecord(rng)
	}
	out := encodeAll(t, csvEncoder, recs)
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatalf("reading the export: %v", err)
	}
	if len(rows) != len(recs)+1 {
		t.Fatalf("read %d rows, want %d", len(rows), len(recs)+1)
	}
	if got := strings.Join(rows[0], ","); got != CSVHeader {
		t.Errorf("header %q, want %q", got, CSVHeader)
	}
	num := func(f float64) string { return string(appendFloat(nil, f)) }
	text := func(s *string) string {
		if s == nil {
			return ""
		}
		return strings.ReplaceAll(*s, "\r\n", "\n")
	}
	for i, r := range recs {
		speed := ""
		if r.Speed != nil {
			speed = num(*r.Speed)
		}
		want := []string{
			strconv.FormatInt(r.ID, 10), text(&r.VehicleID), r.Timestamp.UTC().Format(time.RFC3339Nano),
			speed, num(r.Odometer), strconv.Itoa(int(r.SOC)), num(r.Elevation), text(r.ShiftState),
		}
		if got := rows[i+1]; strings.Join(got, "\x00") != strings.Join(want, "\x00") {
			t.Fatalf("row %d read back as %q, want %q", i+1, got, want)
		}
		for _, cell := range []string{rows[i+1][3], rows[i+1][4], rows[i+1][6]} {
			if cell == "" {
				continue
			}
			// The upload reader takes JSON number syntax only.
			if !json.Valid([]byte(cell)) {
				t.Fatalf("row %d: number %q is not JSON number syntax", i+1, cell)
			}
		}
	}
}

func TestJSONMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, n := range []int{0, 1, 2, 5000} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			recs := make([]records.Record, n)
			want := make([]jsonRecord, n)
			for i := range recs {
				recs[i] = randomRecord(rng)
				want[i] = toJSONRecord(&recs[i])
			}

			got := encodeAll(t, jsonEncoder, recs)
			if n == 0 && got != "[]\n" {
				t.Errorf("empty export %q, want %q", got, "[]\n")
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, []byte(got)); err != nil {
				t.Fatalf("export is not valid JSON: %v", err)
			}
			wantJSON, err := json.Marshal(want)
			if err != nil {
				t.Fatal(err)
			}
			if compact.String() != string(wantJSON) {
				t.Errorf("export differs from encoding/json:\n%s\nwant\n%s", compact.String(), wantJSON)
			}

			// Each object on its own is what encoding/json makes of it,
			// byte for byte (Compact above only removed the separators).
			nd := encodeAll(t, ndjsonEncoder, recs)
			lines := strings.SplitAfter(nd, "\n")
			if last := lines[len(lines)-1]; last != "" {
				t.Fatalf("NDJSON does not end with a newline: %q", last)
			}
			lines = lines[:len(lines)-1]
			if len(lines) != n {
				t.Fatalf("NDJSON has %d lines, want %d", len(lines), n)
			}
			for i, line := range lines {
				w, err := json.Marshal(want[i])
				if err != nil {
					t.Fatal(err)
				}
				if line != string(w)+"\n" {
					t.Fatalf("NDJSON line %d\n%s\nwant\n%s", i, line, w)
				}
			}
		})
	}
}

func TestJSONLayout(t *testing.T) {
	recs := []records.Record{plainRecord(1), plainRecord(2)}
	recs[1].Speed, recs[1].ShiftState = nil, nil
	want := `[{"id":1,"vehicle_id":"06ab31a9-b35d-4e47-8e44-9c35feb1bfae","timestamp":"2022-07-12T16:42:26.435Z","speed":37,"odometer":40800.6,"soc":58,"elevation":92,"shift_state":"D"},` + "\n" +
		`{"id":2,"vehicle_id":"06ab31a9-b35d-4e47-8e44-9c35feb1bfae","timestamp":"2022-07-12T16:42:27.435Z","speed":null,"odometer":40800.6,"soc":58,"elevation":92,"shift_state":null}]` + "\n"
	if got := encodeAll(t, jsonEncoder, recs); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestEncoderErrors(t *testing.T) {
	nan := plainRecord(1)
	nan.Odometer = math.NaN()
	inf := plainRecord(2)
	inf.Speed = ptr(math.Inf(-1))
	elev := plainRecord(3)
	elev.Elevation = math.Inf(1)

	tests := []struct {
		name    string
		run     func(e Encoder) error
		wantErr string
	}{
		{"write before begin", func(e Encoder) error { r := plainRecord(1); return e.Write(&r) }, "before Begin"},
		{"end before begin", func(e Encoder) error { return e.End() }, "before Begin"},
		{"begin twice", func(e Encoder) error { _ = e.Begin(); return e.Begin() }, "twice"},
		{"write after end", func(e Encoder) error {
			_ = e.Begin()
			_ = e.End()
			r := plainRecord(1)
			return e.Write(&r)
		}, "already ended"},
		{"NaN odometer", func(e Encoder) error { _ = e.Begin(); return e.Write(&nan) }, "record 1: odometer is not a finite number"},
		{"infinite speed", func(e Encoder) error { _ = e.Begin(); return e.Write(&inf) }, "record 2: speed"},
		{"infinite elevation", func(e Encoder) error { _ = e.Begin(); return e.Write(&elev) }, "record 3: elevation"},
	}
	for _, format := range []Format{CSV, JSON, NDJSON, XLSX} {
		for _, tt := range tests {
			t.Run(string(format)+"/"+tt.name, func(t *testing.T) {
				e := newEncoder(t, format, io.Discard)
				defer e.Close()
				err := tt.run(e)
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
				}
				// The first error sticks.
				if again := e.End(); again == nil || again.Error() != err.Error() {
					t.Errorf("End after the error returned %v, want %v", again, err)
				}
			})
		}
	}
}

func TestNewUnknownFormat(t *testing.T) {
	if e, err := New(Format("pdf"), io.Discard); e != nil || !errors.Is(err, ErrUnknownFormat) {
		t.Errorf("New: got %v, %v, want ErrUnknownFormat", e, err)
	}
}

type failingWriter struct{ writes int }

func (w *failingWriter) Write(p []byte) (int, error) {
	w.writes++
	return 0, errors.New("connection reset")
}

func TestTextEncoderWriteFailureSticks(t *testing.T) {
	for _, format := range []Format{CSV, JSON, NDJSON} {
		t.Run(string(format), func(t *testing.T) {
			w := &failingWriter{}
			e := newEncoder(t, format, w)
			if err := e.Begin(); err != nil {
				t.Fatalf("Begin: %v", err)
			}
			r := plainRecord(1)
			var err error
			for i := 0; err == nil && i < 100_000; i++ {
				err = e.Write(&r)
			}
			if err == nil || !strings.Contains(err.Error(), "connection reset") {
				t.Fatalf("got %v, want the writer's error once the buffer filled", err)
			}
			if err := e.Write(&r); err == nil {
				t.Error("Write after a failed write succeeded")
			}
			if err := e.End(); err == nil {
				t.Error("End after a failed write succeeded")
			}
			if w.writes != 1 {
				t.Errorf("the writer was called %d times, want 1", w.writes)
			}
		})
	}
}

type countingWriter struct{ n int }

func (w *countingWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

// Export must stream: bytes reach the writer long before End, in chunks of
// the buffer size.
func TestTextEncoderStreams(t *testing.T) {
	for _, format := range []Format{CSV, JSON, NDJSON} {
		t.Run(string(format), func(t *testing.T) {
			w := &countingWriter{}
			e := newEncoder(t, format, w)
			if err := e.Begin(); err != nil {
				t.Fatal(err)
			}
			r := plainRecord(1)
			for range 10_000 {
				if err := e.Write(&r); err != nil {
					t.Fatal(err)
				}
			}
			if w.n < bufferSize {
				t.Errorf("%d bytes written before End, want at least %d", w.n, bufferSize)
			}
			if err := e.(*TextEncoder).Flush(); err != nil {
				t.Fatal(err)
			}
			before := w.n
			if err := e.End(); err != nil {
				t.Fatal(err)
			}
			if format == JSON && w.n != before+2 {
				t.Errorf("End wrote %d bytes, want the 2 of %q", w.n-before, "]\n")
			}
		})
	}
}

// The hot path must not allocate: one buffer, appended to and reused.
func TestTextEncoderWriteDoesNotAllocate(t *testing.T) {
	hostile := plainRecord(7)
	hostile.VehicleID = "veh,\"1\"<&>\u2028\xff 日本"
	hostile.ShiftState = ptr(" NULL\r\n")
	hostile.Speed = ptr(1.5e-300)
	hostile.Timestamp = time.Date(2024, 6, 1, 12, 0, 0, 123456789, time.FixedZone("", 3600))
	parked := plainRecord(8)
	parked.Speed, parked.ShiftState = nil, nil

	for _, format := range []Format{CSV, JSON, NDJSON} {
		for name, rec := range map[string]records.Record{"plain": plainRecord(1), "hostile": hostile, "parked": parked} {
			t.Run(string(format)+"/"+name, func(t *testing.T) {
				e := newEncoder(t, format, io.Discard)
				if err := e.Begin(); err != nil {
					t.Fatal(err)
				}
				// Enough runs to pass several buffer flushes.
				allocs := testing.AllocsPerRun(5000, func() {
					if err := e.Write(&rec); err != nil {
						t.Fatal(err)
					}
				})
				if allocs != 0 {
					t.Errorf("Write allocates %v times per record, want 0", allocs)
				}
			})
		}
	}
}
