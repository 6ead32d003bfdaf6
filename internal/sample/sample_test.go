package sample

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func generate(t testing.TB, opts Options) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := Write(&out, opts); err != nil {
		t.Fatalf("Write(%+v): %v", opts, err)
	}
	return out.Bytes()
}

func TestWriteIsDeterministic(t *testing.T) {
	base := Options{VehicleID: "veh1", Rows: 5000, Seed: 1}
	a := generate(t, base)
	if b := generate(t, base); !bytes.Equal(a, b) {
		t.Fatal("two runs with the same options differ")
	}
	tests := []struct {
		name string
		opts Options
	}{
		{"other seed", Options{VehicleID: "veh1", Rows: 5000, Seed: 2}},
		{"other vehicle", Options{VehicleID: "veh2", Rows: 5000, Seed: 1}},
		{"other start", Options{VehicleID: "veh1", Rows: 5000, Seed: 1, Start: DefaultStart.Add(time.Hour)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if bytes.Equal(generate(t, tt.opts), a) {
				t.Error("output equals the base options' output")
			}
		})
	}
	t.Run("fewer rows keep the same beginning", func(t *testing.T) {
		// Rows only cuts the stream: the first rows stay the same except
		// for a swap held back at the end.
		short := generate(t, Options{VehicleID: "veh1", Rows: 100, Seed: 1})
		lines := strings.SplitAfter(string(short), "\n")
		prefix := strings.Join(lines[:len(lines)-3], "")
		if !bytes.HasPrefix(a, []byte(prefix)) {
			t.Error("the first 98 rows of 100 differ from those of 5000")
		}
	})
}

var (
	timestampRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.(\d{0,2}[1-9]|0)$`)
	naturalRE   = regexp.MustCompile(`^(0|[1-9][0-9]*)$`)
	integerRE   = regexp.MustCompile(`^(0|-?[1-9][0-9]*)$`)
	odometerRE  = regexp.MustCompile(`^(0|[1-9][0-9]*)(\.[1-9])?$`)
)

// sampleRow is a parsed, checked row.
type sampleRow struct {
	line      int
	at        time.Time
	speed     int // -1 for NULL
	odometer  float64
	soc       int
	elevation int
	shift     string
}

// parseSample reads a generated file with an RFC 4180 reader and checks every
// cell against the file rules of the contract and the shape of the real data.
func parseSample(t *testing.T, data []byte) []sampleRow {
	t.Helper()
	cr := csv.NewReader(bytes.NewReader(data))
	cr.FieldsPerRecord = 6
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		t.Fatalf("header: %v", err)
	}
	if got := strings.Join(header, ","); got != Header {
		t.Fatalf("header %q, want %q", got, Header)
	}
	var rows []sampleRow
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("line %d: %v", line, err)
		}
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("line %d %q: "+format, append([]any{line, rec}, args...)...)
		}
		r := sampleRow{line: line, speed: -1, shift: rec[5]}
		if !timestampRE.MatchString(rec[0]) {
			fail("timestamp %q has not the form YYYY-MM-DD hh:mm:ss.f with 1 to 3 digits, no trailing zero", rec[0])
		}
		if r.at, err = time.Parse("2006-01-02 15:04:05.999", rec[0]); err != nil {
			fail("timestamp: %v", err)
		}
		if rec[1] != "NULL" {
			if !naturalRE.MatchString(rec[1]) {
				fail("speed %q is not NULL or a natural number", rec[1])
			}
			r.speed, _ = strconv.Atoi(rec[1])
			if r.speed > 200 {
				fail("speed %d km/h", r.speed)
			}
		}
		if !odometerRE.MatchString(rec[2]) {
			fail("odometer %q is not a number >= 0 with at most one non-zero decimal", rec[2])
		}
		r.odometer, _ = strconv.ParseFloat(rec[2], 64)
		if !naturalRE.MatchString(rec[3]) {
			fail("soc %q is not an integer >= 0", rec[3])
		}
		if r.soc, _ = strconv.Atoi(rec[3]); r.soc > 100 {
			fail("soc %d > 100", r.soc)
		}
		if !integerRE.MatchString(rec[4]) {
			fail("elevation %q is not an integer", rec[4])
		}
		r.elevation, _ = strconv.Atoi(rec[4])
		switch r.shift {
		case "NULL":
		case "D", "R":
			if r.speed < 0 {
				fail("moving in %s without a speed", r.shift)
			}
		case "N", "P":
			if r.speed != 0 {
				fail("%s at speed %d", r.shift, r.speed)
			}
		default:
			fail("shift state %q", r.shift)
		}
		rows = append(rows, r)
	}
	return rows
}

// checkTimeline checks the rows in time order: unique timestamps at least a
// second apart, the odometer never going back, elevation drifting slowly;
// the first timestamp must be start unless start is zero.
func checkTimeline(t *testing.T, rows []sampleRow, start time.Time) []sampleRow {
	t.Helper()
	sorted := slices.Clone(rows)
	slices.SortFunc(sorted, func(a, b sampleRow) int { return a.at.Compare(b.at) })
	if len(sorted) > 0 && !start.IsZero() && !sorted[0].at.Equal(start) {
		t.Errorf("first timestamp %v, want the start %v", sorted[0].at, start)
	}
	for i := 1; i < len(sorted); i++ {
		prev, cur := sorted[i-1], sorted[i]
		if gap := cur.at.Sub(prev.at); gap < time.Second {
			t.Fatalf("lines %d and %d are %v apart, want at least 1s", prev.line, cur.line, gap)
		}
		if cur.odometer < prev.odometer {
			t.Fatalf("odometer goes back from %v (line %d) to %v (line %d)", prev.odometer, prev.line, cur.odometer, cur.line)
		}
		if d := cur.elevation - prev.elevation; d > 15 || d < -15 {
			t.Fatalf("elevation jumps %d m between lines %d and %d", d, prev.line, cur.line)
		}
		if prev.speed < 0 && cur.speed < 0 && cur.odometer != prev.odometer {
			t.Fatalf("odometer moves while parked between lines %d and %d", prev.line, cur.line)
		}
	}
	return sorted
}

func TestWriteRowsAreValid(t *testing.T) {
	tests := []struct {
		name string
		opts Options
	}{
		{"no rows", Options{Rows: 0, Seed: 1}},
		{"one row", Options{Rows: 1, Seed: 1}},
		{"two rows", Options{Rows: 2, Seed: 2}},
		{"seed 3", Options{Rows: 20_000, Seed: 3, VehicleID: "a"}},
		{"seed 4", Options{Rows: 20_000, Seed: 4, VehicleID: "b"}},
		{"negative seed", Options{Rows: 20_000, Seed: -5}},
		{"start before 1970 with a fraction", Options{Rows: 5000, Seed: 6, Start: time.Date(1969, 12, 31, 23, 0, 0, 123_456_789, time.UTC)}},
		{"start in another zone", Options{Rows: 5000, Seed: 7, Start: time.Date(2024, 3, 31, 1, 30, 0, 0, time.FixedZone("", 2*3600))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows := parseSample(t, generate(t, tt.opts))
			if len(rows) != tt.opts.Rows {
				t.Fatalf("%d rows, want %d", len(rows), tt.opts.Rows)
			}
			start := tt.opts.Start
			if start.IsZero() {
				start = DefaultStart
			}
			checkTimeline(t, rows, start.UTC().Truncate(time.Millisecond))
		})
	}
}

// A long file has what the real data has: parked stretches, trips, parking
// manoeuvres, charging, and about 1% of rows out of order.
func TestWriteLooksLikeTheRealData(t *testing.T) {
	rows := parseSample(t, generate(t, Options{Rows: 100_000, Seed: 11, VehicleID: "veh1"}))
	sorted := checkTimeline(t, rows, DefaultStart)

	shifts := map[string]int{}
	for _, r := range rows {
		shifts[r.shift]++
	}
	for _, s := range []string{"NULL", "D", "R", "N", "P"} {
		if shifts[s] == 0 {
			t.Errorf("no row in shift state %s: %v", s, shifts)
		}
	}
	if d := float64(shifts["D"]) / float64(len(rows)); d < 0.3 || d > 0.9 {
		t.Errorf("%.0f%% of rows in D, want most but not all", d*100)
	}

	backwards := 0
	for i := 1; i < len(rows); i++ {
		if rows[i].at.Before(rows[i-1].at) {
			backwards++
		}
	}
	if frac := float64(backwards) / float64(len(rows)); frac < 0.002 || frac > 0.02 {
		t.Errorf("%d of %d rows go back in time, want about 1%%", backwards, len(rows))
	}

	charged, drained := false, false
	for i := 1; i < len(sorted); i++ {
		prev, cur := sorted[i-1], sorted[i]
		charged = charged || prev.speed < 0 && cur.speed < 0 && cur.soc > prev.soc
		drained = drained || cur.speed > 0 && cur.soc < prev.soc
	}
	if !charged || !drained {
		t.Errorf("charged while parked: %v, drained while driving: %v; want both", charged, drained)
	}
}

func TestRowFormat(t *testing.T) {
	tests := []struct {
		name string
		r    row
		want string
	}{
		{"parked, whole second", row{ms: DefaultStart.UnixMilli(), speed: -1, odometer: 408006, soc: 58, elevation: 92}, "2022-07-12 16:40:00.0,NULL,40800.6,58,92,NULL\n"},
		{"driving, one digit", row{ms: DefaultStart.UnixMilli() + 400, speed: 37, odometer: 476760, soc: 73, elevation: -4, shift: 'D'}, "2022-07-12 16:40:00.4,37,47676,73,-4,D\n"},
		{"two digits", row{ms: DefaultStart.UnixMilli() + 10, speed: 0, soc: 100, shift: 'P'}, "2022-07-12 16:40:00.01,0,0,100,0,P\n"},
		{"three digits", row{ms: DefaultStart.UnixMilli() + 435, speed: 0, odometer: 1, shift: 'R'}, "2022-07-12 16:40:00.435,0,0.1,0,0,R\n"},
		{"before 1970", row{ms: -1, speed: -1}, "1969-12-31 23:59:59.999,NULL,0,0,0,NULL\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o output
			o.row(&tt.r)
			if got := string(o.buf); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("date changes at midnight", func(t *testing.T) {
		var o output
		midnight := time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC).UnixMilli()
		for _, ms := range []int64{midnight - 1, midnight, midnight + 86_400_000} {
			o.row(&row{ms: ms, speed: -1})
		}
		want := "2024-02-28 23:59:59.999,NULL,0,0,0,NULL\n2024-02-29 00:00:00.0,NULL,0,0,0,NULL\n2024-03-01 00:00:00.0,NULL,0,0,0,NULL\n"
		if got := string(o.buf); got != want {
			t.Errorf("got\n%s\nwant\n%s", got, want)
		}
	})
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteErrors(t *testing.T) {
	tests := []struct {
		name    string
		w       io.Writer
		opts    Options
		wantErr string
	}{
		{"negative rows", io.Discard, Options{Rows: -1}, "rows -1 is negative"},
		{"start past 9999", io.Discard, Options{Rows: 1, Start: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, "outside years"},
		{"running past 9999", io.Discard, Options{Rows: 100_000, Start: time.Date(9999, 12, 31, 12, 0, 0, 0, time.UTC)}, "year 9999"},
		{"writer fails", failingWriter{}, Options{Rows: 10}, "disk full"},
		{"writer fails mid-way", failingWriter{}, Options{Rows: 100_000}, "disk full"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Write(tt.w, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestVehicleIDs(t *testing.T) {
	ids := VehicleIDs(1000, 42)
	seen := map[string]bool{}
	for _, id := range ids {
		if !uuidRE.MatchString(id) {
			t.Errorf("id %q is not a version 4 UUID", id)
		}
		if seen[id] {
			t.Errorf("id %q twice", id)
		}
		seen[id] = true
	}
	if len(ids) != 1000 {
		t.Errorf("%d ids, want 1000", len(ids))
	}
	if again := VehicleIDs(10, 42); !slices.Equal(again, ids[:10]) {
		t.Errorf("VehicleIDs(10, 42) = %v, want the first ten of VehicleIDs(1000, 42)", again)
	}
	if other := VehicleIDs(10, 43); slices.Equal(other, ids[:10]) {
		t.Error("seed 43 gives the ids of seed 42")
	}
	if none := VehicleIDs(-1, 42); len(none) != 0 {
		t.Errorf("VehicleIDs(-1) = %v, want none", none)
	}
}

func TestWriteDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "dir")
	paths, err := WriteDir(dir, 3, 500, 9)
	if err != nil {
		t.Fatalf("WriteDir: %v", err)
	}
	ids := VehicleIDs(3, 9)
	if len(paths) != len(ids) {
		t.Fatalf("%d paths, want %d", len(paths), len(ids))
	}
	contents := make([][]byte, len(paths))
	for i, path := range paths {
		if want := filepath.Join(dir, ids[i]+".csv"); path != want {
			t.Errorf("path %q, want %q", path, want)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		contents[i] = data
		rows := parseSample(t, data)
		if len(rows) != 500 {
			t.Errorf("%s: %d rows, want 500", path, len(rows))
		}
		sorted := checkTimeline(t, rows, time.Time{})
		if first := sorted[0].at; first.Before(DefaultStart) || first.After(DefaultStart.Add(90*time.Minute)) {
			t.Errorf("%s starts at %v, want within 90 minutes of %v", path, first, DefaultStart)
		}
	}
	if bytes.Equal(contents[0], contents[1]) {
		t.Error("two vehicles have the same data")
	}

	again, err := WriteDir(t.TempDir(), 3, 500, 9)
	if err != nil {
		t.Fatal(err)
	}
	for i, path := range again {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Base(path) != filepath.Base(paths[i]) || !bytes.Equal(data, contents[i]) {
			t.Errorf("second run: %s differs from %s", path, paths[i])
		}
	}
}

func TestWriteDirErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		dir      string
		vehicles int
		rows     int
	}{
		{"negative vehicles", t.TempDir(), -1, 10},
		{"negative rows", t.TempDir(), 1, -1},
		{"dir is a file", file, 1, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if paths, err := WriteDir(tt.dir, tt.vehicles, tt.rows, 1); err == nil {
				t.Errorf("WriteDir wrote %v, want an error", paths)
			}
		})
	}
	t.Run("no vehicles", func(t *testing.T) {
		paths, err := WriteDir(t.TempDir(), 0, 10, 1)
		if err != nil || len(paths) != 0 {
			t.Errorf("got %v, %v, want no files and no error", paths, err)
		}
	})
}

type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// BenchmarkWrite generates 1,000,000 rows per op.
func BenchmarkWrite(b *testing.B) {
	const rows = 1_000_000
	size := &countWriter{}
	if err := Write(size, Options{Rows: rows, Seed: 1}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size.n)
	b.ReportAllocs()
	for b.Loop() {
		if err := Write(io.Discard, Options{Rows: rows, Seed: 1}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
