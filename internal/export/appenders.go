package export

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// The appenders below write into a caller's buffer so that encoding a row
// allocates nothing.

// appendFloat appends f exactly as encoding/json encodes a float64, so that
// an export and the list endpoint print the same number the same way:
// shortest representation, exponent form below 1e-6 and from 1e21 on, with
// the exponent not padded ("1e-7", not "1e-07"). f must be finite.
func appendFloat(b []byte, f float64) []byte {
	// Whole numbers (socs, elevations, most speeds) as integers: the same digits, several
	// times faster than the shortest-representation search, which was a sixth of the server's
	// time under the series mix. Below 1e15 every integer is exact and prints in full; -0 is
	// "-0" in encoding/json.
	if f == math.Trunc(f) && math.Abs(f) < 1e15 && (f != 0 || !math.Signbit(f)) {
		return strconv.AppendInt(b, int64(f), 10)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// jsonSafe marks the ASCII bytes encoding/json writes unescaped with its
// default HTML escaping: printable ASCII except '"', '\\', '<', '>' and '&'.
var jsonSafe = func() (set [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		set[c] = true
	}
	set['"'], set['\\'], set['<'], set['>'], set['&'] = false, false, false, false, false
	return set
}()

// appendJSONString appends s as json.Marshal does by default: HTML-unsafe
// '<', '>', '&' and the JavaScript line terminators U+2028/U+2029 as \u
// escapes, invalid UTF-8 as \ufffd.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if jsonSafe[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendCSVField appends a text cell, quoted (RFC 4180) only when it has to
// be: it holds a comma, quote, CR or LF, or starts or ends with white space
// that other tools would trim. Two more cases are quoted although our own
// upload reader cannot tell them apart from null (it reads "", NULL and
// "NULL" in any case as null, quoted or not; a known limitation): the empty
// string and any casing of NULL. Quoting them costs nothing and keeps them
// strings for readers that do distinguish, such as PostgreSQL's COPY.
func appendCSVField(b []byte, s string) []byte {
	if !csvNeedsQuotes(s) {
		return append(b, s...)
	}
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			b = append(b, s[start:i+1]...)
			b = append(b, '"')
			start = i + 1
		}
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func csvNeedsQuotes(s string) bool {
	if s == "" || s == `\.` || isNullWord(s) {
		return true
	}
	if isCSVSpace(s[0]) || isCSVSpace(s[len(s)-1]) {
		return true
	}
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ',', '"', '\r', '\n':
			return true
		}
	}
	return false
}

func isCSVSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\v' || c == '\f' }

// isNullWord reports whether s is NULL in any case, which the upload reader
// takes for null.
func isNullWord(s string) bool {
	return len(s) == 4 && s[0]|0x20 == 'n' && s[1]|0x20 == 'u' && s[2]|0x20 == 'l' && s[3]|0x20 == 'l'
}
