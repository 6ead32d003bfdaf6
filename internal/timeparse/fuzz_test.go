package timeparse

import (
	"strings"
	"testing"
	"time"
)

var fuzzSeeds = []string{
	"2024-06-01",
	"2024-06-01T12:00:00Z",
	"2024-06-01 14:00:00+02:00",
	"2024-06-01T14:00:00 02:00",
	"2024-06-01T14:05", "2024-06-01 14:05 02:00", "2024-06-01t14:05z",
	"2022-07-12 16:42:25.435",
	"2024-06-01T12:00:00.123456789-23:59",
	"0001-01-01T00:00:00+00:01",
	"9999-12-31T23:59:59.999999999-00:01",
	"2022-02-30",
	"2024-06-01T24:00:00",
	"2024-06-01T12:00:00+0200",
	" 2024-03-31T02:30:00 ",
}

// checkRoundTrip asserts that an accepted value is in UTC, whole microseconds, within the
// contract's years, and parses back to itself from its RFC 3339 form.
func checkRoundTrip(t *testing.T, in string, got time.Time) {
	t.Helper()
	if got.Location() != time.UTC {
		t.Fatalf("parse(%q) location = %v, want UTC", in, got.Location())
	}
	if got.Nanosecond()%1000 != 0 {
		t.Fatalf("parse(%q) = %v, want whole microseconds", in, got)
	}
	if got.Before(minInstant) || got.After(maxInstant) {
		t.Fatalf("parse(%q) = %v, outside years 0001..9999", in, got)
	}
	s := got.Format(time.RFC3339Nano)
	for name, parse := range map[string]func(string) (time.Time, error){
		"ParseFile":  ParseFile,
		"ParseQuery": func(s string) (time.Time, error) { return ParseQuery(s, nil) },
	} {
		again, err := parse(s)
		if err != nil {
			t.Fatalf("%s(%q) (formatted from %q) error: %v", name, s, in, err)
		}
		if !again.Equal(got) {
			t.Fatalf("%s(%q) = %v, want %v (from %q)", name, s, again, got, in)
		}
	}
}

func FuzzParseFile(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := ParseFile(in)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "invalid timestamp ") {
				t.Fatalf("ParseFile(%q) error %q lacks the usual prefix", in, err)
			}
			return
		}
		checkRoundTrip(t, in, got)
		// Whatever a file accepts, a query accepts with the same instant.
		q, err := ParseQuery(in, time.UTC)
		if err != nil {
			t.Fatalf("ParseFile(%q) = %v but ParseQuery error: %v", in, got, err)
		}
		if !q.Equal(got) {
			t.Fatalf("ParseQuery(%q, UTC) = %v, ParseFile = %v", in, q, got)
		}
	})
}

func FuzzParseQuery(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s, "UTC")
		f.Add(s, "Europe/Berlin")
	}
	f.Add("2024-11-03T01:30:00", "America/New_York")
	f.Add("1883-11-18T12:00:00", "America/Chicago")
	f.Fuzz(func(t *testing.T, in, zone string) {
		loc, err := LoadLocation(zone)
		if err != nil {
			loc = nil // still exercise the parser, in UTC
		}
		got, err := ParseQuery(in, loc)
		if err != nil {
			return
		}
		checkRoundTrip(t, in, got)
		in = strings.TrimSpace(in)
		if loc == nil || hasOffset(in) {
			return
		}
		// Without an offset the value is a wall clock reading in loc: the result must show
		// it there, or a later one when it falls into a gap (at most a skipped day).
		wall, err := ParseFile(withSeconds(in))
		if err != nil {
			t.Fatalf("ParseQuery(%q) = %v but ParseFile error: %v", in, got, err)
		}
		local := got.In(loc)
		shown := time.Date(local.Year(), local.Month(), local.Day(), local.Hour(), local.Minute(),
			local.Second(), local.Nanosecond(), time.UTC)
		if d := shown.Sub(wall); d < 0 || d > 24*time.Hour {
			t.Fatalf("ParseQuery(%q, %v) = %v, shown there as %v", in, loc, got, local)
		}
	})
}

// hasOffset reports whether an accepted, trimmed timestamp carries an offset.
func hasOffset(s string) bool {
	if len(s) <= 16 {
		return false
	}
	switch s[len(s)-1] {
	case 'Z', 'z':
		return true
	}
	if len(s) < 22 {
		return false
	}
	c := s[len(s)-6]
	return c == '+' || c == '-' || c == ' '
}

// withSeconds writes a query's hh:mm as hh:mm:00, the form a file needs.
func withSeconds(s string) string {
	if len(s) >= 16 && s[13] == ':' && (len(s) == 16 || s[16] != ':') {
		return s[:16] + ":00" + s[16:]
	}
	return s
}
