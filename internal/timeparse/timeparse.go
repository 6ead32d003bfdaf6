// Package timeparse parses the timestamps of the vehicle data contract: the strict grammar of
// uploaded files (ParseFile), the more forgiving one of query parameters (ParseQuery), and
// IANA time zone names (LoadLocation).
//
// The parsers are hand-written byte scanners rather than regexp or time.Parse: ParseFile runs
// once per uploaded row (millions per file) and must not allocate on success, and the
// grammar (optional parts, lower-case t and z, 1 to 9 fraction digits, offsets only as
// ±hh:mm up to 23:59) would take several time.Parse layouts plus checks of their own.
package timeparse

import (
	"fmt"
	"strings"
	"time"
)

// ParseError reports a value that is not a valid timestamp and why.
type ParseError struct {
	Value  string // the rejected input, possibly shortened
	Reason string // what is wrong, e.g. "day out of range"
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("invalid timestamp %q: %s", e.Value, e.Reason)
}

// maxErrorValue bounds the input quoted in an error, so a huge query value or cell cannot
// blow up logs and responses.
const maxErrorValue = 64

func newError(s, reason string) *ParseError {
	if len(s) > maxErrorValue {
		s = s[:maxErrorValue] + "..."
	}
	// Clone: callers may pass a view of a reused buffer (the CSV reader does).
	return &ParseError{Value: strings.Clone(s), Reason: reason}
}

// Reasons are constants so that the success and failure paths of parse never allocate.
const (
	errEmpty         = "empty value"
	errDate          = "expected a date as YYYY-MM-DD"
	errYear          = "year out of range"
	errMonth         = "month out of range"
	errDay           = "day out of range"
	errSeparator     = "expected T or a space between date and time"
	errTime          = "expected a time as hh:mm:ss"
	errHour          = "hour out of range"
	errMinute        = "minute out of range"
	errSecond        = "second out of range"
	errFraction      = "expected 1 to 9 digits after the decimal point"
	errAfterTime     = "expected Z or an offset like +02:00 after the time"
	errSpaceOffset   = "unexpected space before the offset"
	errOffset        = "expected an offset as +hh:mm or -hh:mm"
	errOffsetHour    = "offset hour out of range"
	errOffsetMinute  = "offset minute out of range"
	errAfterZ        = "unexpected text after Z"
	errInstantRange  = "outside the years 0001 to 9999 in UTC"
	errLocationRange = "outside the years 0001 to 9999 in the time zone"
)

// fields is a parsed timestamp before it becomes a time.Time.
type fields struct {
	year, month, day  int
	hour, minute, sec int
	nsec              int
	hasOffset         bool
	offsetSeconds     int // east of UTC
}

// The instants the contract allows: years 0001..9999 in UTC.
var (
	minInstant = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	maxInstant = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
)

// ParseFile parses a timestamp cell of an uploaded file: YYYY-MM-DD, optionally followed by
// T, t or a space and hh:mm:ss, an optional fraction of 1 to 9 digits (truncated to the
// microsecond) and an optional Z, z, +hh:mm or -hh:mm. Without an offset the value is UTC.
// The caller trims surrounding white space. The result is in UTC. It does not allocate on
// success.
func ParseFile(s string) (time.Time, error) {
	f, reason := parse(s, false)
	if reason != "" {
		return time.Time{}, newError(s, reason)
	}
	t := time.Date(f.year, time.Month(f.month), f.day, f.hour, f.minute, f.sec, f.nsec, time.UTC)
	if f.hasOffset {
		t = t.Add(-time.Duration(f.offsetSeconds) * time.Second)
		// Only the first and last year can be pushed out of range by an offset (< 24 h).
		if (f.year == 1 || f.year == 9999) && (t.Before(minInstant) || t.After(maxInstant)) {
			return time.Time{}, newError(s, errInstantRange)
		}
	}
	return t, nil
}

// ParseQuery parses a timestamp query parameter. It accepts everything ParseFile accepts,
// hh:mm without seconds (2024-06-01T12:05, what an HTML datetime-local input sends, with or
// without an offset after it), and a space in place of the '+' of an offset (an unencoded '+' in a query string arrives
// as a space: "2024-06-01T14:00:00 02:00" means +02:00). Surrounding white space is ignored.
// A value without an offset, bare dates included (midnight), is read in loc; nil means UTC.
// Local times that do not exist or occur twice at a daylight saving change resolve as in
// PostgreSQL: a skipped time takes the offset before the change (02:30 becomes 03:30 on a
// spring-forward night), an ambiguous one the offset after it (the later instant). The
// result is in UTC.
func ParseQuery(s string, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	f, reason := parse(s, true)
	if reason != "" {
		return time.Time{}, newError(s, reason)
	}
	if loc == nil {
		loc = time.UTC
	}
	t := time.Date(f.year, time.Month(f.month), f.day, f.hour, f.minute, f.sec, f.nsec, time.UTC)
	switch {
	case f.hasOffset:
		t = t.Add(-time.Duration(f.offsetSeconds) * time.Second)
	case loc != time.UTC:
		t = inLocation(t, loc)
	}
	if t.Before(minInstant) || t.After(maxInstant) {
		if f.hasOffset || loc == time.UTC {
			return time.Time{}, newError(s, errInstantRange)
		}
		return time.Time{}, newError(s, errLocationRange)
	}
	return t.UTC(), nil
}

// inLocation returns the instant at which the wall clock of loc shows wall's UTC clock
// reading. Where there are two such instants (a fall-back overlap) or none (a spring-forward
// gap) it follows PostgreSQL's rule, which in both cases amounts to taking the later of the
// readings with the offsets before and after the transition. time.Date does not promise
// which one it picks, and in practice its choice depends on the sign of the offset.
func inLocation(wall time.Time, loc *time.Location) time.Time {
	// Start before any candidate (offsets stay within ±24 h) and walk the transitions.
	probe := wall.Add(-48 * time.Hour).In(loc)
	_, before := probe.Zone()
	for {
		beforeT := wall.Add(-time.Duration(before) * time.Second)
		_, end := probe.ZoneBounds()
		if end.IsZero() || probe.After(wall.Add(48*time.Hour)) { // no later transition near wall
			return beforeT
		}
		if !end.After(probe) {
			// Past its tables the time package can name a year's end as the bound at and after
			// it (Europe/Berlin in 6001, found by FuzzParseQuery: the walk never moved). No zone
			// changes twice within an hour: step one.
			probe = probe.Add(time.Hour)
			_, before = probe.Zone()
			continue
		}
		next := end.In(loc)
		_, after := next.Zone()
		afterT := wall.Add(-time.Duration(after) * time.Second)
		switch {
		case beforeT.Before(end) && afterT.Before(end):
			return beforeT
		case !beforeT.Before(end) && !afterT.Before(end):
			probe, before = next, after // both readings lie past this transition
		case beforeT.After(afterT):
			return beforeT
		default:
			return afterT
		}
	}
}

// parse scans s. query enables the space-for-plus offset. It returns a constant reason on
// failure so that neither path allocates.
func parse(s string, query bool) (fields, string) {
	var f fields
	if len(s) == 0 {
		return f, errEmpty
	}
	// Date: YYYY-MM-DD.
	if len(s) < 10 || s[4] != '-' || s[7] != '-' {
		return f, errDate
	}
	var ok bool
	if f.year, ok = digits(s[0:4]); !ok {
		return f, errDate
	}
	if f.month, ok = digits(s[5:7]); !ok {
		return f, errDate
	}
	if f.day, ok = digits(s[8:10]); !ok {
		return f, errDate
	}
	switch {
	case f.year == 0:
		return f, errYear
	case f.month < 1 || f.month > 12:
		return f, errMonth
	case f.day < 1 || f.day > daysIn(f.year, f.month):
		return f, errDay
	}
	if len(s) == 10 {
		return f, ""
	}

	// Time: separator and hh:mm:ss.
	if c := s[10]; c != 'T' && c != 't' && c != ' ' {
		return f, errSeparator
	}
	// A query may leave the seconds out (hh:mm, what an HTML datetime-local input sends);
	// a file may not.
	minutesOnly := query && len(s) >= 16 && s[13] == ':' && (len(s) == 16 || s[16] != ':')
	if !minutesOnly && (len(s) < 19 || s[13] != ':' || s[16] != ':') {
		return f, errTime
	}
	if f.hour, ok = digits(s[11:13]); !ok {
		return f, errTime
	}
	if f.minute, ok = digits(s[14:16]); !ok {
		return f, errTime
	}
	i := 16
	if !minutesOnly {
		if f.sec, ok = digits(s[17:19]); !ok {
			return f, errTime
		}
		i = 19
	}
	switch {
	case f.hour > 23:
		return f, errHour
	case f.minute > 59:
		return f, errMinute
	case f.sec > 59:
		return f, errSecond
	}

	// Optional fraction: '.' and 1..9 digits, truncated to the microsecond; only after seconds.
	if i < len(s) && s[i] == '.' && !minutesOnly {
		i++
		start := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		n := i - start
		if n < 1 || n > 9 {
			return f, errFraction
		}
		v, _ := digits(s[start:i])
		for k := n; k < 9; k++ {
			v *= 10
		}
		f.nsec = v - v%1000
	}
	if i == len(s) {
		return f, ""
	}

	// Optional offset.
	switch c := s[i]; {
	case c == 'Z' || c == 'z':
		if i+1 != len(s) {
			return f, errAfterZ
		}
		f.hasOffset = true
		return f, ""
	case c == '+' || c == '-' || (c == ' ' && query && i+1 < len(s) && isDigit(s[i+1])):
		sign := 1
		if c == '-' {
			sign = -1
		}
		rest := s[i+1:]
		if len(rest) != 5 || rest[2] != ':' {
			return f, errOffset
		}
		h, ok1 := digits(rest[0:2])
		m, ok2 := digits(rest[3:5])
		if !ok1 || !ok2 {
			return f, errOffset
		}
		if h > 23 {
			return f, errOffsetHour
		}
		if m > 59 {
			return f, errOffsetMinute
		}
		f.hasOffset = true
		f.offsetSeconds = sign * (h*3600 + m*60)
		return f, ""
	case c == ' ':
		return f, errSpaceOffset
	default:
		return f, errAfterTime
	}
}

// digits parses a short run of ASCII digits; ok is false if any byte is not a digit.
func digits(s string) (v int, ok bool) {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
		v = v*10 + int(s[i]-'0')
	}
	return v, true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	default:
		return 31
	}
}
