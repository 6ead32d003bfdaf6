package timeparse

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unsafe"
)

func TestParseFileAccepts(t *testing.T) {
	tests := []struct {
		in   string
		want string // RFC 3339 in UTC
	}{
		{"2024-06-01", "2024-06-01T00:00:00Z"},
		{"2024-06-01T12:00:00Z", "2024-06-01T12:00:00Z"},
		{"2024-06-01t12:00:00z", "2024-06-01T12:00:00Z"},
		{"2024-06-01 12:00:00", "2024-06-01T12:00:00Z"},
		{"2024-06-01T12:00:00", "2024-06-01T12:00:00Z"},
		{"2024-06-01T14:00:00+02:00", "2024-06-01T12:00:00Z"},
		{"2024-06-01T10:30:00-01:30", "2024-06-01T12:00:00Z"},
		{"2024-06-01T00:00:00-23:59", "2024-06-01T23:59:00Z"},
		{"2024-06-01T00:00:00+00:00", "2024-06-01T00:00:00Z"},
		{"2024-06-01T00:00:00-00:00", "2024-06-01T00:00:00Z"},
		{"2022-07-12 16:42:25.435", "2022-07-12T16:42:25.435Z"},
		{"2022-07-12 18:05:17.4", "2022-07-12T18:05:17.4Z"},
		{"2024-06-01T12:00:00.123456Z", "2024-06-01T12:00:00.123456Z"},
		// More than 6 digits: truncated, not rounded.
		{"2024-06-01T12:00:00.1234567Z", "2024-06-01T12:00:00.123456Z"},
		{"2024-06-01T12:00:00.999999999Z", "2024-06-01T12:00:00.999999Z"},
		{"2024-06-01T12:00:00.000000999", "2024-06-01T12:00:00Z"},
		{"2024-06-01T12:00:00.5+02:00", "2024-06-01T10:00:00.5Z"},
		{"2024-02-29", "2024-02-29T00:00:00Z"},
		{"2000-02-29", "2000-02-29T00:00:00Z"},
		{"2024-12-31T23:59:59", "2024-12-31T23:59:59Z"},
		{"0001-01-01", "0001-01-01T00:00:00Z"},
		{"0001-01-01T01:00:00+01:00", "0001-01-01T00:00:00Z"},
		{"9999-12-31T23:59:59.999999", "9999-12-31T23:59:59.999999Z"},
		{"9999-12-31T22:00:00-01:59", "9999-12-31T23:59:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseFile(tt.in)
			if err != nil {
				t.Fatalf("ParseFile(%q) error: %v", tt.in, err)
			}
			if got.Location() != time.UTC {
				t.Errorf("ParseFile(%q) location = %v, want UTC", tt.in, got.Location())
			}
			if s := got.Format(time.RFC3339Nano); s != tt.want {
				t.Errorf("ParseFile(%q) = %s, want %s", tt.in, s, tt.want)
			}
		})
	}
}

// rejectTests are invalid in files and in queries alike.
var rejectTests = []struct {
	in     string
	reason string
}{
	{"", errEmpty},
	{"2024", errDate},
	{"2024-6-01", errDate},
	{"2024-06-1", errDate},
	{"24-06-01", errDate},
	{"2024/06/01", errDate},
	{"20240601", errDate},
	{"2024-0a-01", errDate},
	{"+2024-06-01", errDate},
	{"0000-01-01", errYear},
	{"2024-00-01", errMonth},
	{"2024-13-01", errMonth},
	{"2024-06-00", errDay},
	{"2022-02-29", errDay},
	{"1900-02-29", errDay},
	{"2022-02-30", errDay},
	{"2024-04-31", errDay},
	{"2024-06-32", errDay},
	{"2024-06-01Z", errSeparator},
	{"2024-06-01X12:00:00", errSeparator},
	{"2024-06-01T", errTime},
	{"2024-06-01T12:00", errTime},
	{"2024-06-01T12:00Z", errTime},
	{"2024-06-01T12:00+02:00", errTime},
	{"2024-06-01T1:00:00", errTime},
	{"2024-06-01T12-00-00", errTime},
	{"2024-06-01T12:0a:00", errTime},
	{"2024-06-01T24:00:00", errHour},
	{"2024-06-01T12:60:00", errMinute},
	{"2024-06-01T12:00:60", errSecond},
	{"2024-06-01T12:00:00.", errFraction},
	{"2024-06-01T12:00:00.Z", errFraction},
	{"2024-06-01T12:00:00.1234567890", errFraction},
	{"2024-06-01T12:00:00,5", errAfterTime},
	{"2024-06-01T12:00:00+0200", errOffset},
	{"2024-06-01T12:00:00+02", errOffset},
	{"2024-06-01T12:00:00+2:00", errOffset},
	{"2024-06-01T12:00:00+02:00:00", errOffset},
	{"2024-06-01T12:00:00+0a:00", errOffset},
	{"2024-06-01T12:00:00+24:00", errOffsetHour},
	{"2024-06-01T12:00:00-02:60", errOffsetMinute},
	{"2024-06-01T12:00:00ZZ", errAfterZ},
	{"2024-06-01T12:00:00Z ", errAfterZ},
	{"2024-06-01T12:00:00UTC", errAfterTime},
	{"2024-06-01T12:00:00 Z", errSpaceOffset},
	{"0001-01-01T00:00:00+00:01", errInstantRange},
	{"9999-12-31T23:59:59-00:01", errInstantRange},
	{"2024-06-01T12:00:00\x00", errAfterTime},
	{"２０２４-06-01", errDate},
}

func TestParseFileRejects(t *testing.T) {
	extra := []struct {
		in     string
		reason string
	}{
		// Surrounding white space is the caller's business.
		{" 2024-06-01", errDate},
		{"2024-06-01 ", errTime},
		{"2024-06-01T12:00:00 ", errSpaceOffset},
		// The query-only space-for-plus form is not valid in a file.
		{"2024-06-01T14:00:00 02:00", errSpaceOffset},
		{"2024-06-01T12:00:00 +02:00", errSpaceOffset},
	}
	for _, tt := range append(extra, rejectTests...) {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseFile(tt.in)
			checkRejected(t, tt.in, got, err, tt.reason)
		})
	}
}

func checkRejected(t *testing.T, in string, got time.Time, err error, reason string) {
	t.Helper()
	if err == nil {
		t.Fatalf("parse(%q) = %v, want error %q", in, got, reason)
	}
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("parse(%q) error %T (%v), want *ParseError", in, err, err)
	}
	if pe.Reason != reason {
		t.Errorf("parse(%q) reason = %q, want %q", in, pe.Reason, reason)
	}
	if !got.IsZero() {
		t.Errorf("parse(%q) returned %v with an error, want the zero time", in, got)
	}
}

func TestParseErrorMessage(t *testing.T) {
	_, err := ParseFile("2022-02-30")
	if got, want := err.Error(), `invalid timestamp "2022-02-30": day out of range`; got != want {
		t.Errorf("error = %q, want %q", got, want)
	}
	long := strings.Repeat("9", 1000)
	_, err = ParseFile(long)
	if got := err.Error(); len(got) > 200 {
		t.Errorf("error for a 1000-byte value is %d bytes long, want it shortened", len(got))
	}
}

// The error must not share memory with the input: the CSV reader passes views of a buffer
// it reuses.
func TestParseErrorDoesNotRetainInput(t *testing.T) {
	buf := []byte("2022-02-30")
	_, err := ParseFile(unsafe.String(&buf[0], len(buf)))
	copy(buf, "xxxxxxxxxx")
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Value != "2022-02-30" {
		t.Errorf("error value = %v, want 2022-02-30", err)
	}
}

func TestParseQuery(t *testing.T) {
	berlin := mustLoad(t, "Europe/Berlin")
	newYork := mustLoad(t, "America/New_York")
	kiritimati := mustLoad(t, "Pacific/Kiritimati") // UTC+14
	tests := []struct {
		name string
		in   string
		loc  *time.Location
		want string
	}{
		{"offset", "2024-06-01T14:00:00+02:00", nil, "2024-06-01T12:00:00Z"},
		{"space for plus", "2024-06-01T14:00:00 02:00", nil, "2024-06-01T12:00:00Z"},
		{"space for plus with space separator", "2024-06-01 14:00:00 02:00", nil, "2024-06-01T12:00:00Z"},
		{"space for plus after fraction", "2024-06-01T14:00:00.25 02:00", nil, "2024-06-01T12:00:00.25Z"},
		{"space for plus wins over loc", "2024-06-01T14:00:00 02:00", newYork, "2024-06-01T12:00:00Z"},
		{"minus offset", "2024-06-01T10:00:00-02:00", berlin, "2024-06-01T12:00:00Z"},
		{"Z wins over loc", "2024-06-01T12:00:00Z", berlin, "2024-06-01T12:00:00Z"},
		{"surrounding white space", " \t2024-06-01T12:00:00Z\n ", nil, "2024-06-01T12:00:00Z"},
		{"nil loc is UTC", "2024-06-01T12:00:00", nil, "2024-06-01T12:00:00Z"},
		{"nil loc bare date", "2024-06-01", nil, "2024-06-01T00:00:00Z"},
		{"summer time", "2024-06-01T14:00:00", berlin, "2024-06-01T12:00:00Z"},
		{"winter time", "2024-01-15T13:00:00", berlin, "2024-01-15T12:00:00Z"},
		{"bare date is midnight in loc", "2024-06-01", berlin, "2024-05-31T22:00:00Z"},
		{"bare date in winter", "2024-01-15", newYork, "2024-01-15T05:00:00Z"},
		{"just before spring gap", "2024-03-31T01:59:59", berlin, "2024-03-31T00:59:59Z"},
		// 02:30 does not exist in Berlin that night: it moves forward by the gap (03:30 CEST).
		{"inside spring gap", "2024-03-31T02:30:00", berlin, "2024-03-31T01:30:00Z"},
		{"after spring gap", "2024-03-31T03:00:00", berlin, "2024-03-31T01:00:00Z"},
		// 02:30 occurs twice in Berlin that night: the offset after the change (CET) is used.
		{"autumn overlap", "2024-10-27T02:30:00", berlin, "2024-10-27T01:30:00Z"},
		{"before autumn overlap", "2024-10-27T01:59:59", berlin, "2024-10-26T23:59:59Z"},
		{"after autumn overlap", "2024-10-27T03:00:00", berlin, "2024-10-27T02:00:00Z"},
		{"New York overlap", "2024-11-03T01:30:00", newYork, "2024-11-03T06:30:00Z"},
		{"New York gap", "2024-03-10T02:30:00", newYork, "2024-03-10T07:30:00Z"},
		// Past the time package's tables, where it names a year's end as a zone bound at and
		// after it: the walk over the transitions went on for ever.
		{"new year past the tables", "6001-01-01", berlin, "6000-12-31T23:00:00Z"},
		{"summer past the tables", "6001-07-01T12:00", berlin, "6001-07-01T10:00:00Z"},
		{"truncated fraction", "2024-06-01T12:00:00.9999999", nil, "2024-06-01T12:00:00.999999Z"},
		{"first instant", "0001-01-01", nil, "0001-01-01T00:00:00Z"},
		{"last instant", "9999-12-31T23:59:59.999999", nil, "9999-12-31T23:59:59.999999Z"},
		{"last instant in loc", "9999-12-31T12:00:00", kiritimati, "9999-12-30T22:00:00Z"},
		// Minute precision (an HTML datetime-local input): seconds are zero.
		{"minutes", "2024-06-01T12:05", nil, "2024-06-01T12:05:00Z"},
		{"minutes with space", "2024-06-01 12:05", nil, "2024-06-01T12:05:00Z"},
		{"minutes lower-case t", "2024-06-01t12:05", nil, "2024-06-01T12:05:00Z"},
		{"minutes Z", "2024-06-01T12:05Z", berlin, "2024-06-01T12:05:00Z"},
		{"minutes offset", "2024-06-01T14:05+02:00", nil, "2024-06-01T12:05:00Z"},
		{"minutes space for plus", "2024-06-01T14:05 02:00", nil, "2024-06-01T12:05:00Z"},
		{"minutes negative offset", "2024-06-01T10:05-02:00", nil, "2024-06-01T12:05:00Z"},
		{"minutes in loc", "2024-06-01T14:05", berlin, "2024-06-01T12:05:00Z"},
		{"minutes in spring gap", "2024-03-31T02:30", berlin, "2024-03-31T01:30:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseQuery(tt.in, tt.loc)
			if err != nil {
				t.Fatalf("ParseQuery(%q, %v) error: %v", tt.in, tt.loc, err)
			}
			if got.Location() != time.UTC {
				t.Errorf("ParseQuery(%q) location = %v, want UTC", tt.in, got.Location())
			}
			if s := got.Format(time.RFC3339Nano); s != tt.want {
				t.Errorf("ParseQuery(%q, %v) = %s, want %s", tt.in, tt.loc, s, tt.want)
			}
		})
	}
}

func TestParseQueryRejects(t *testing.T) {
	berlin := mustLoad(t, "Europe/Berlin")
	tests := []struct {
		name   string
		in     string
		loc    *time.Location
		reason string
	}{
		{"only white space", "  ", nil, errEmpty},
		{"minutes then colon", "2024-06-01T12:05:", nil, errTime},
		{"minutes with fraction", "2024-06-01T12:05.5", nil, errAfterTime},
		{"minutes hour range", "2024-06-01T24:05", nil, errHour},
		{"minutes minute range", "2024-06-01T12:60", nil, errMinute},
		{"one minute digit", "2024-06-01T12:5", nil, errTime},
		{"minutes space before offset", "2024-06-01T12:05 +02:00", nil, errSpaceOffset},
		{"space for plus without colon", "2024-06-01T14:00:00 0200", nil, errOffset},
		{"space for plus short", "2024-06-01T14:00:00 02", nil, errOffset},
		{"two spaces", "2024-06-01T14:00:00  02:00", nil, errSpaceOffset},
		{"space before offset", "2024-06-01T14:00:00 +02:00", nil, errSpaceOffset},
		{"space before Z", "2024-06-01T14:00:00 Z", nil, errSpaceOffset},
		{"space for plus hour range", "2024-06-01T14:00:00 24:00", nil, errOffsetHour},
		{"before year 1 in loc", "0001-01-01T00:30:00", berlin, errLocationRange},
		{"after year 9999 in loc", "9999-12-31T23:00:00", mustLoad(t, "America/Los_Angeles"), errLocationRange},
		{"before year 1 offset", "0001-01-01T00:00:00+00:01", nil, errInstantRange},
		{"first date east of UTC", "0001-01-01", mustLoad(t, "Asia/Tokyo"), errLocationRange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseQuery(tt.in, tt.loc)
			checkRejected(t, tt.in, got, err, tt.reason)
		})
	}
	for _, tt := range rejectTests {
		t.Run("file rule "+tt.in, func(t *testing.T) {
			if strings.TrimSpace(tt.in) != tt.in {
				t.Skip("white space is trimmed in queries")
			}
			if queryMinutes[tt.in] {
				t.Skip("a query may leave the seconds out")
			}
			got, err := ParseQuery(tt.in, nil)
			checkRejected(t, tt.in, got, err, tt.reason)
		})
	}
}

// queryMinutes are the file rejections that a query accepts: hh:mm without seconds.
var queryMinutes = map[string]bool{
	"2024-06-01T12:00": true, "2024-06-01T12:00Z": true, "2024-06-01T12:00+02:00": true,
}

func TestParseFileAllocations(t *testing.T) {
	for _, in := range []string{"2024-06-01", "2022-07-12 16:42:25.435", "2024-06-01T14:00:00.123456789+02:00"} {
		n := testing.AllocsPerRun(100, func() {
			if _, err := ParseFile(in); err != nil {
				t.Fatal(err)
			}
		})
		if n != 0 {
			t.Errorf("ParseFile(%q) allocates %v times per call, want 0", in, n)
		}
	}
}

func TestParseQueryAllocations(t *testing.T) {
	berlin := mustLoad(t, "Europe/Berlin")
	n := testing.AllocsPerRun(100, func() {
		if _, err := ParseQuery("2024-06-01 14:00:00", berlin); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Errorf("ParseQuery allocates %v times per call, want 0", n)
	}
}

func BenchmarkParseFile(b *testing.B) {
	for _, in := range []string{"2022-07-12 16:42:25.435", "2024-06-01T14:00:00.123456+02:00", "2024-06-01"} {
		b.Run(in, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseFile(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTimeParse is the standard library doing a comparable job, for scale.
func BenchmarkTimeParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := time.Parse("2006-01-02 15:04:05.999999999", "2022-07-12 16:42:25.435"); err != nil {
			b.Fatal(err)
		}
	}
}

func mustLoad(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}
