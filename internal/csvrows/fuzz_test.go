package csvrows

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"reflect"
	"strconv"
	"testing"
	"unicode/utf8"

	"github.com/vehicle-data/vehicle-data/internal/records"
)

// outcome is everything one Next call returned.
type outcome struct {
	Row    Row
	RowErr *RowError
	Err    error
}

// collect reads data with a read buffer of bufSize bytes until an error, failing if that
// takes more calls than the input has bytes (each record consumes at least one).
func collect(t *testing.T, data []byte, bufSize int) []outcome {
	t.Helper()
	return collectLimit(t, data, bufSize, MaxRecordSize)
}

// collectLimit is collect with records limited to maxRecord bytes.
func collectLimit(t *testing.T, data []byte, bufSize, maxRecord int) []outcome {
	t.Helper()
	s := newScanner(bytes.NewReader(data), bufSize)
	s.maxRecord = maxRecord
	r := &Reader{s: s, vehicleID: "veh1"}
	var out []outcome
	for range len(data) + 2 {
		row, rowErr, err := r.Next()
		out = append(out, outcome{row, rowErr, err})
		if err != nil {
			return out
		}
	}
	t.Fatalf("reader did not stop after %d calls on %d bytes", len(data)+2, len(data))
	return nil
}

func FuzzReader(f *testing.F) {
	f.Add([]byte(header + "2024-06-01T12:00:00Z,55.5,1234.5,80,10.5,D\n"))
	f.Add([]byte("\xEF\xBB\xBF\r\nid,vehicle_id," + header + "1,veh1,2024-06-01 12:00:00.5,NULL,1,58.0,-3,\"a\r\nb\"\r\n\n,veh2,x,,,,,\n"))
	f.Add([]byte(header + "\"2024-06-01\",\"1,5\",\"\"\"\",1e2,1e999,\"x\ny\"\n2024-06-01,1,2,3,4\r5,6\n"))
	f.Add([]byte(header + "2024-06-01,1,2,3,4,\"unterminated\n\n"))
	f.Add([]byte("timestamp,speed,odometer,soc,elevation,shift_state,foo,speed\n"))
	f.Add([]byte(header + "2024-06-01,1,2,3,4,D\x00\n2024-06-01,1,2,3,4,\xff\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		out := collect(t, data, readBufferSize)
		lines := bytes.Count(data, []byte("\n")) + 1
		prev := 1 // the header's line, at least
		for _, o := range out[:len(out)-1] {
			line := o.Row.Line
			if o.RowErr != nil {
				line = o.RowErr.Line
				checkFuzzRowError(t, o.RowErr)
			} else {
				checkFuzzRow(t, o.Row)
			}
			if line <= prev || line > lines {
				t.Fatalf("record on line %d after line %d, input has %d lines", line, prev, lines)
			}
			prev = line
		}
		var ferr *FormatError
		var herr *HeaderError
		switch err := out[len(out)-1].Err; {
		case err == io.EOF, errors.As(err, &herr):
		case errors.As(err, &ferr):
			if ferr.Line < 1 || ferr.Line > lines {
				t.Fatalf("format error on line %d, input has %d lines", ferr.Line, lines)
			}
		default:
			t.Fatalf("unexpected error %T: %v", err, err)
		}

		// Where the reads are cut must not matter.
		if small := collect(t, data, 16); !reflect.DeepEqual(small, out) {
			t.Fatalf("a 16-byte buffer reads\n%+v\nthe default one\n%+v", small, out)
		}

		// A record limit the fuzzer can reach: records over it become row errors, and nothing
		// else changes (where records start, what the others read as, how reading ends).
		limited := collectLimit(t, data, readBufferSize, fuzzRecordLimit)
		checkLimited(t, data, out, limited)
		if small := collectLimit(t, data, 16, fuzzRecordLimit); !reflect.DeepEqual(small, limited) {
			t.Fatalf("with a %d-byte limit a 16-byte buffer reads\n%+v\nthe default one\n%+v", fuzzRecordLimit, small, limited)
		}
	})
}

// fuzzRecordLimit is above the seeds' header (51 bytes) and most of their rows, so that the
// fuzzer finds records on both sides of it.
const fuzzRecordLimit = 64

// checkLimited compares what data reads as under fuzzRecordLimit with what it reads as
// under MaxRecordSize (out).
func checkLimited(t *testing.T, data []byte, out, limited []outcome) {
	t.Helper()
	var ferr *FormatError
	if len(limited) == 1 && errors.As(limited[0].Err, &ferr) && ferr.Message == headerTooLong {
		// Whatever the header's names say, but only a well-formed header is too long: its
		// quoting is checked first.
		line, err := newScanner(bytes.NewReader(data), readBufferSize).next()
		if err != nil || line != ferr.Line {
			t.Fatalf("the header is too long on line %d under a %d-byte limit, but its record reads as line %d, %v", ferr.Line, fuzzRecordLimit, line, err)
		}
		return
	}
	if len(limited) != len(out) {
		t.Fatalf("under a %d-byte limit\n%+v\nunder the real one\n%+v", fuzzRecordLimit, limited, out)
	}
	for i, o := range out {
		l := limited[i]
		if reflect.DeepEqual(o, l) {
			continue
		}
		line := o.Row.Line
		if o.RowErr != nil {
			line = o.RowErr.Line
		}
		if o.Err != nil || l.RowErr == nil || l.RowErr.Message != rowTooLong || l.RowErr.Line != line || l.RowErr.Column != nil {
			t.Fatalf("result %d under a %d-byte limit: %+v, under the real one: %+v", i, fuzzRecordLimit, l, o)
		}
	}
}

func checkFuzzRowError(t *testing.T, e *RowError) {
	t.Helper()
	if e.Line < 2 {
		t.Fatalf("row error on line %d, want >= 2", e.Line)
	}
	if e.Message == "" {
		t.Fatalf("row error without a message: %+v", e)
	}
	if !utf8.ValidString(e.Value) || bytes.IndexByte([]byte(e.Value), 0) >= 0 || len(e.Value) > maxReportedBytes+len("…") {
		t.Fatalf("row error value %q is not reportable", e.Value)
	}
}

func checkFuzzRow(t *testing.T, r Row) {
	t.Helper()
	finite := func(f float64) bool { return !math.IsInf(f, 0) && !math.IsNaN(f) }
	switch {
	case r.Line < 2:
		t.Fatalf("row on line %d", r.Line)
	case r.SpeedValid && (r.Speed < 0 || !finite(r.Speed)), !r.SpeedValid && r.Speed != 0:
		t.Fatalf("bad speed in %+v", r)
	case r.Odometer < 0 || !finite(r.Odometer), !finite(r.Elevation):
		t.Fatalf("bad number in %+v", r)
	case r.SOC < records.MinSOC || r.SOC > records.MaxSOC:
		t.Fatalf("bad soc in %+v", r)
	case r.Timestamp.Year() < 1 || r.Timestamp.Year() > 9999 || r.Timestamp.Nanosecond()%1000 != 0:
		t.Fatalf("bad timestamp in %+v", r)
	case r.ShiftStateValid && (!utf8.ValidString(r.ShiftState) || utf8.RuneCountInString(r.ShiftState) > records.MaxShiftStateLen ||
		bytes.IndexByte([]byte(r.ShiftState), 0) >= 0):
		t.Fatalf("bad shift_state in %+v", r)
	case !r.ShiftStateValid && r.ShiftState != "":
		t.Fatalf("null shift_state with a value in %+v", r)
	}
}

// FuzzParseNumber checks the number grammar against encoding/json's and the value against
// strconv.ParseFloat (which the fast path must match exactly).
func FuzzParseNumber(f *testing.F) {
	for _, s := range []string{"0", "-0", "58.0", "40800.6", "1e2", "-12.5E-3", "0.1", "999999999999999",
		"9007199254740993", "0.000000000000001", "1e999", "1e-400", "+5", "05", ".5", "5.", "0x10", "NaN"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if s == "" || isSpace(s[0]) || isSpace(s[len(s)-1]) {
			return // cells are trimmed and checked for null before
		}
		got, p := parseNumber([]byte(s))
		jsonNumber := json.Valid([]byte(s)) && (s[0] == '-' || isDigit(s[0]))
		if (p != numberSyntax) != jsonNumber {
			t.Fatalf("parseNumber(%q) problem %d, JSON number: %v", s, p, jsonNumber)
		}
		if !jsonNumber {
			return
		}
		want, err := strconv.ParseFloat(s, 64)
		switch {
		case math.IsInf(want, 0):
			if p != numberInfinite || err == nil {
				t.Fatalf("parseNumber(%q) = %v, %d; want numberInfinite", s, got, p)
			}
		case p != numberOK:
			t.Fatalf("parseNumber(%q) problem %d, want %v", s, p, want)
		case got != want || got == 0 && math.Signbit(got):
			t.Fatalf("parseNumber(%q) = %v (sign bit %v), want %v without a sign on zero", s, got, math.Signbit(got), want)
		}
	})
}
