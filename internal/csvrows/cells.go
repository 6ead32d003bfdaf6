package csvrows

import (
	"math"
	"strconv"
	"time"
	"unsafe"

	"github.com/vehicle-data/vehicle-data/internal/timeparse"
)

// view returns b as a string without copying. It is only passed to functions that do not
// keep their argument (strconv.ParseFloat, timeparse.ParseFile, which copies into errors):
// b is a window into the reused record buffer and changes with the next record.
func view(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// trimSpace removes ASCII white space around a cell; nothing wider, so that a cell such as
// "\u00a012" (no-break space) is rejected rather than guessed at.
func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// isNull reports whether a trimmed cell means null: empty or NULL in any case.
func isNull(b []byte) bool {
	// c|0x20 folds ASCII upper case to lower case; only 'N' and 'n' give 'n', and so on.
	return len(b) == 0 ||
		len(b) == 4 && b[0]|0x20 == 'n' && b[1]|0x20 == 'u' && b[2]|0x20 == 'l' && b[3]|0x20 == 'l'
}

// numberProblem is what parseNumber found wrong.
type numberProblem uint8

const (
	numberOK numberProblem = iota
	numberSyntax
	numberInfinite
)

// parseNumber parses a trimmed, non-empty cell in JSON number syntax
// (-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?) as a finite float64. Negative zero
// becomes zero. strconv alone would also take "+5", ".5", "0x10", "1_000", "NaN", "Inf".
func parseNumber(b []byte) (float64, numberProblem) {
	i, n := 0, len(b)
	neg := i < n && b[i] == '-'
	if neg {
		i++
	}
	// mant and digits feed the fast path below: the digits read, and how many.
	var mant uint64
	digits, fracDigits := 0, 0
	switch {
	case i < n && b[i] == '0':
		i, digits = i+1, 1
	case i < n && '1' <= b[i] && b[i] <= '9':
		for ; i < n && isDigit(b[i]); i++ {
			mant, digits = mant*10+uint64(b[i]-'0'), digits+1
		}
	default:
		return 0, numberSyntax
	}
	if i < n && b[i] == '.' {
		i++
		if i == n || !isDigit(b[i]) {
			return 0, numberSyntax
		}
		for ; i < n && isDigit(b[i]); i++ {
			mant, digits, fracDigits = mant*10+uint64(b[i]-'0'), digits+1, fracDigits+1
		}
	}
	exponent := false
	if i < n && (b[i] == 'e' || b[i] == 'E') {
		exponent = true
		i++
		if i < n && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i == n || !isDigit(b[i]) {
			return 0, numberSyntax
		}
		for i < n && isDigit(b[i]) {
			i++
		}
	}
	if i != n {
		return 0, numberSyntax
	}
	// Fast path for the usual cells (58, 40800.6): with at most 15 digits both the mantissa
	// and the power of ten are exact float64 values, so one IEEE division is correctly
	// rounded and gives what ParseFloat would.
	if !exponent && digits <= 15 {
		f := float64(mant) / pow10[fracDigits]
		if neg && f != 0 { // -0 is stored as 0
			f = -f
		}
		return f, numberOK
	}
	f, err := strconv.ParseFloat(view(b), 64)
	// The grammar leaves only range errors: overflow gives ±Inf (rejected), underflow a
	// value rounded to zero (accepted, as JSON decoders do).
	if err != nil && math.IsInf(f, 0) {
		return 0, numberInfinite
	}
	if f == 0 {
		f = 0 // drop the sign of -0
	}
	return f, numberOK
}

var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func numberMessage(name string, p numberProblem) string {
	if p == numberInfinite {
		return name + " must be a finite number"
	}
	return name + " must be a number (such as 12.5 or 1e2)"
}

// parseTimestamp parses a trimmed, non-empty timestamp cell.
func parseTimestamp(b []byte) (time.Time, string) {
	t, err := timeparse.ParseFile(view(b))
	if err != nil {
		if pe, ok := err.(*timeparse.ParseError); ok {
			return time.Time{}, "invalid timestamp: " + pe.Reason
		}
		return time.Time{}, "invalid timestamp"
	}
	return t, ""
}
