package csvrows

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// FormatError reports a file that is not well-formed CSV. It ends reading: no row of such a
// file can be trusted.
type FormatError struct {
	Line    int // physical line of the problem (header = 1)
	Message string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("malformed CSV on line %d: %s", e.Line, e.Message)
}

// HeaderError reports a header that does not name exactly the expected columns. Names are
// shortened to maxReportedBytes.
type HeaderError struct {
	Missing   []string // required columns that are absent, in the contract's order
	Unknown   []string // columns that are not allowed, in header order, each once
	Duplicate []string // allowed columns named more than once, each once
}

func (e *HeaderError) Error() string {
	var parts []string
	for _, p := range []struct {
		what  string
		names []string
	}{{"missing", e.Missing}, {"unknown", e.Unknown}, {"duplicate", e.Duplicate}} {
		if len(p.names) == 0 {
			continue
		}
		// A header of thousands of junk names must not become a megabyte of message.
		shown := p.names[:min(len(p.names), maxNamedColumns)]
		quoted := make([]string, len(shown), len(shown)+1)
		for i, n := range shown {
			quoted[i] = quoteName(truncateName(n))
		}
		if rest := len(p.names) - len(shown); rest > 0 {
			quoted = append(quoted, fmt.Sprintf("and %d more", rest))
		}
		parts = append(parts, p.what+" column(s): "+strings.Join(quoted, ", "))
	}
	return strings.Join(parts, "; ")
}

// maxNamedColumns bounds how many names of one kind a header error lists.
const maxNamedColumns = 20

// truncateName shortens a very long column name for the message, at a rune boundary.
func truncateName(n string) string {
	const max = 64
	if len(n) <= max {
		return n
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(n[cut]) {
		cut--
	}
	return n[:cut] + "…"
}

// quoteName leaves plain names as they are (soc, shift_state) and quotes anything that
// would be ambiguous in a comma-separated message: empty names, spaces, commas, controls.
func quoteName(n string) string {
	if n == "" {
		return `""`
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.') {
			return strconv.Quote(n)
		}
	}
	return n
}

// RowError reports an invalid row: its first problem in the header's column order.
type RowError struct {
	Line    int     // physical line where the record starts (header = 1)
	Column  *string // nil when the problem is the whole row: its cell count or its size
	Value   string  // the raw cell, shortened and made valid UTF-8 without NUL for reports
	Message string
}

// maxReportedBytes bounds values and names copied into errors, which are reported to
// clients and may be many.
const maxReportedBytes = 200

// reportable makes a copy of a raw cell or name that is safe to put into JSON and into a
// PostgreSQL text or jsonb value: at most maxReportedBytes (cut at a character boundary and
// marked with "…"), invalid UTF-8 and NUL replaced by U+FFFD.
func reportable(b []byte) string {
	truncated := false
	if len(b) > maxReportedBytes {
		cut := maxReportedBytes
		for cut > maxReportedBytes-utf8.UTFMax && !utf8.RuneStart(b[cut]) {
			cut--
		}
		b, truncated = b[:cut], true
	}
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	if truncated {
		s += "…"
	}
	return s
}
