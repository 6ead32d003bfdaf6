// Package export encodes telemetry records as CSV, JSON, NDJSON or XLSX,
// writing each record as it arrives so an export of any size streams in
// bounded memory (XLSX excepted: a workbook is assembled before it is written).
package export

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/vehicle-data/vehicle-data/internal/records"
)

// Format is an export file format, named as in the export query parameter.
type Format string

// The supported formats.
const (
	CSV    Format = "csv"
	JSON   Format = "json"
	NDJSON Format = "ndjson"
	XLSX   Format = "xlsx"
)

// Formats lists every supported format in the order they are documented.
var Formats = []Format{CSV, JSON, NDJSON, XLSX}

// ErrUnknownFormat is wrapped by ParseFormat's error so callers can map it to a 400.
var ErrUnknownFormat = errors.New("unknown export format")

// ParseFormat reads the export query parameter. An empty value means CSV.
// Names are case-sensitive, as documented.
func ParseFormat(s string) (Format, error) {
	if s == "" {
		return CSV, nil
	}
	for _, f := range Formats {
		if s == string(f) {
			return f, nil
		}
	}
	return "", fmt.Errorf("%w %q: allowed values are csv, json, ndjson, xlsx", ErrUnknownFormat, s)
}

// String returns the format's name.
func (f Format) String() string { return string(f) }

// ContentType returns the media type of the format, or "application/octet-stream"
// for an unknown one.
func (f Format) ContentType() string {
	switch f {
	case CSV:
		return "text/csv; charset=utf-8"
	case JSON:
		return "application/json"
	case NDJSON:
		return "application/x-ndjson"
	case XLSX:
		return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	}
	return "application/octet-stream"
}

// Extension returns the file name extension of the format, without the dot
// ("bin" for an unknown format).
func (f Format) Extension() string {
	switch f {
	case CSV, JSON, NDJSON, XLSX:
		return string(f)
	}
	return "bin"
}

// defaultBaseName names the file of an export without a vehicle filter.
const defaultBaseName = "vehicle_data"

// ContentDisposition returns the Content-Disposition header of an export of
// vehicleID's records (all vehicles when empty): attachment; filename="<id>.<ext>".
//
// The id comes from the query string, so it may hold anything: quotes,
// backslashes, CR/LF, control or bidi characters, path separators. The quoted
// filename keeps only [A-Za-z0-9._-] and replaces every other character with
// '_'; when the id has (printable) non-ASCII characters an RFC 5987 filename*
// parameter carries them percent-encoded. A leading '.' becomes '_' so the
// name is never hidden or "..", and ids are cut to records.MaxVehicleIDLen runes.
func ContentDisposition(vehicleID string, f Format) string {
	base := defaultBaseName
	if vehicleID != "" {
		base = vehicleID
	}
	name := safeName(base)
	ext := "." + f.Extension()

	ascii := make([]byte, 0, len(name))
	for _, r := range name {
		if r >= utf8.RuneSelf {
			r = '_'
		}
		ascii = append(ascii, byte(r))
	}

	var b strings.Builder
	b.WriteString(`attachment; filename="`)
	b.Write(ascii)
	b.WriteString(ext)
	b.WriteByte('"')
	if string(ascii) != name {
		b.WriteString("; filename*=UTF-8''")
		appendPercentEncoded(&b, name+ext)
	}
	return b.String()
}

// safeName keeps ASCII letters, digits, '.', '-', '_' and printable non-ASCII
// runes, replacing everything else (including invalid UTF-8) with '_'.
func safeName(s string) string {
	var b strings.Builder
	n := 0
	leadingDots := true
	for i, r := range s {
		if n == records.MaxVehicleIDLen {
			break
		}
		n++
		switch {
		case r == utf8.RuneError && isInvalidAt(s, i):
			r = '_'
		case r < utf8.RuneSelf:
			if !isSafeASCII(byte(r)) {
				r = '_'
			}
		case !unicode.IsPrint(r): // bidi overrides, non-ASCII spaces, unassigned
			r = '_'
		}
		if r == '.' && leadingDots {
			r = '_'
		} else {
			leadingDots = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

func isInvalidAt(s string, i int) bool {
	_, size := utf8.DecodeRuneInString(s[i:])
	return size <= 1
}

func isSafeASCII(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '.' || c == '-' || c == '_'
}

// appendPercentEncoded writes s as an RFC 5987 value-chars: attr-chars as
// they are, every other byte as %XX.
func appendPercentEncoded(b *strings.Builder, s string) {
	const hexUpper = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isAttrChar(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexUpper[c>>4])
		b.WriteByte(hexUpper[c&0xF])
	}
}

// isAttrChar reports whether c is an RFC 5987 attr-char.
func isAttrChar(c byte) bool {
	if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
		return true
	}
	return strings.IndexByte("!#$&+-.^_`|~", c) >= 0
}
