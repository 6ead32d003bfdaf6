// Package csvrows reads the CSV file of a chunked upload as a stream of validated rows,
// following the contract's rules for the file format ("How a file is read"): RFC 4180
// quoting, LF or CRLF line ends, an optional BOM, a header naming the columns in any order,
// and per-cell rules for nulls, numbers and timestamps.
//
// It holds one record in memory at a time (a record over MaxRecordSize, an invalid row, is
// read past without being held) and does not allocate per valid row, so that a file of
// millions of rows can be fed straight into a COPY. Duplicate timestamps are not
// its business: the store detects them.
package csvrows

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/vehicle-data/vehicle-data/internal/records"
)

// Row is one valid row. Nullable values come with a Valid flag rather than as pointers, so
// that reading a row does not allocate.
type Row struct {
	Line            int // physical line where the record starts (header = 1)
	Timestamp       time.Time
	Speed           float64
	SpeedValid      bool
	Odometer        float64
	SOC             int16
	Elevation       float64
	ShiftState      string
	ShiftStateValid bool
}

// column is what a header position holds.
type column uint8

const (
	colID column = iota // accepted and ignored, so that an export can be uploaded again
	colVehicleID
	colTimestamp
	colSpeed
	colOdometer
	colSOC
	colElevation
	colShiftState
)

// required lists the columns every file must have, in the order they are reported missing.
var required = []string{"timestamp", "speed", "odometer", "soc", "elevation", "shift_state"}

var columnsByName = map[string]column{
	"id":          colID,
	"vehicle_id":  colVehicleID,
	"timestamp":   colTimestamp,
	"speed":       colSpeed,
	"odometer":    colOdometer,
	"soc":         colSOC,
	"elevation":   colElevation,
	"shift_state": colShiftState,
}

// Reader reads an upload's CSV stream. Call ReadHeader once, then Next until it returns
// an error.
type Reader struct {
	s         *scanner
	vehicleID string
	names     []string // header names by position, trimmed
	cols      []column // header columns by position
	header    bool     // ReadHeader has run
	err       error    // a header problem, returned by every later call
}

// NewReader returns a Reader of r for an upload of vehicleID: a vehicle_id column, if the
// file has one, must hold exactly that value.
func NewReader(r io.Reader, vehicleID string) *Reader {
	return &Reader{s: newScanner(r, readBufferSize), vehicleID: vehicleID}
}

// ReadHeader reads and checks the header: the first non-blank line. It returns a
// *HeaderError when columns are missing, unknown or named twice (an empty file misses all of
// them), a *FormatError when the header is not valid CSV, not valid UTF-8 or longer than
// MaxRecordSize, or a read error. Calling it again returns the same result.
func (r *Reader) ReadHeader() error {
	if r.header {
		return r.err
	}
	r.header = true
	line, err := r.s.next()
	switch {
	case err == io.EOF:
		r.err = &HeaderError{Missing: append([]string(nil), required...)}
		return r.err
	case err != nil:
		r.err = err
		return err
	}
	if r.s.tooLong {
		r.err = &FormatError{Line: line, Message: headerTooLong}
		return r.err
	}
	n := r.s.nfields
	r.names, r.cols = make([]string, n), make([]column, n)
	herr := &HeaderError{}
	seen := make(map[string]bool, n)
	unknown := make(map[string]bool)
	for i := range n {
		raw := r.s.field(i)
		if !utf8.Valid(raw) {
			r.err = &FormatError{Line: line, Message: fmt.Sprintf("column %d of the header is not valid UTF-8", i+1)}
			return r.err
		}
		name := string(trimSpace(raw))
		r.names[i] = name
		col, ok := columnsByName[name]
		switch {
		case !ok:
			if !unknown[name] {
				unknown[name] = true
				herr.Unknown = append(herr.Unknown, reportable([]byte(name)))
			}
		case seen[name]:
			if !slices.Contains(herr.Duplicate, name) {
				herr.Duplicate = append(herr.Duplicate, name)
			}
		default:
			seen[name] = true
			r.cols[i] = col
		}
	}
	for _, name := range required {
		if !seen[name] {
			herr.Missing = append(herr.Missing, name)
		}
	}
	if len(herr.Missing)+len(herr.Unknown)+len(herr.Duplicate) > 0 {
		r.err = herr
		return herr
	}
	// Rows with more cells than the header are invalid whatever the extra cells hold: the
	// scanner only counts them.
	r.s.maxFields = n
	return nil
}

// Next returns the next record as exactly one of: a valid Row; a *RowError for an invalid
// row (reading can go on); or an error, which ends reading: io.EOF after the last record,
// a *FormatError for malformed CSV, a header error (see ReadHeader, which Next calls if
// needed) or a read error. Blank lines are skipped. A record longer than MaxRecordSize is
// a *RowError whatever its cells hold (they were not kept), with a nil Column.
func (r *Reader) Next() (Row, *RowError, error) {
	if err := r.ReadHeader(); err != nil {
		return Row{}, nil, err
	}
	line, err := r.s.next()
	if err != nil {
		return Row{}, nil, err
	}
	if r.s.tooLong {
		return Row{}, &RowError{Line: line, Message: rowTooLong}, nil
	}
	if r.s.nfields != len(r.cols) {
		return Row{}, &RowError{
			Line:    line,
			Message: fmt.Sprintf("row has %d cells, the header has %d", r.s.nfields, len(r.cols)),
		}, nil
	}
	row := Row{Line: line}
	// Most records are plain ASCII: check them at once, not cell by cell.
	plain := plainASCII(r.s.rec)
	for i, col := range r.cols {
		cell := r.s.field(i)
		if msg := r.readCell(col, r.names[i], cell, plain, &row); msg != "" {
			name := r.names[i]
			return Row{}, &RowError{Line: line, Column: &name, Value: reportable(cell), Message: msg}, nil
		}
	}
	return row, nil, nil
}

// readCell checks one cell and stores its value in row. It returns what is wrong, or "".
// plain says that the record is ASCII without NUL, so the cell needs no encoding checks.
func (r *Reader) readCell(col column, name string, cell []byte, plain bool, row *Row) string {
	if !plain {
		if bytes.IndexByte(cell, 0) >= 0 {
			return name + " contains a NUL character"
		}
		if !utf8.Valid(cell) {
			return name + " is not valid UTF-8"
		}
	}
	switch col {
	case colID:
		return ""
	case colVehicleID:
		// Verbatim, as exported; compared without converting the cell to a string.
		if string(cell) == r.vehicleID {
			return ""
		}
		if isNull(trimSpace(cell)) {
			return "vehicle_id is required"
		}
		return fmt.Sprintf("vehicle_id must equal the upload's vehicle_id %q", r.vehicleID)
	case colTimestamp:
		v := trimSpace(cell)
		if isNull(v) {
			return "timestamp is required"
		}
		t, msg := parseTimestamp(v)
		if msg != "" {
			return msg
		}
		row.Timestamp = t
	case colSpeed:
		v := trimSpace(cell)
		if isNull(v) {
			return ""
		}
		f, p := parseNumber(v)
		if p != numberOK {
			return numberMessage(name, p)
		}
		if err := records.CheckSpeed(f); err != nil {
			return "speed " + err.Error()
		}
		row.Speed, row.SpeedValid = f, true
	case colOdometer:
		v := trimSpace(cell)
		if isNull(v) {
			return "odometer is required"
		}
		f, p := parseNumber(v)
		if p != numberOK {
			return numberMessage(name, p)
		}
		if err := records.CheckOdometer(f); err != nil {
			return "odometer " + err.Error()
		}
		row.Odometer = f
	case colSOC:
		v := trimSpace(cell)
		if isNull(v) {
			return "soc is required"
		}
		f, p := parseNumber(v)
		if p == numberSyntax {
			return numberMessage(name, p)
		}
		if p == numberInfinite {
			f = math.Inf(1) // out of range, like any huge soc
		}
		if err := records.CheckSOC(f); err != nil {
			return "soc " + err.Error()
		}
		row.SOC = int16(f)
	case colElevation:
		v := trimSpace(cell)
		if isNull(v) {
			return "elevation is required"
		}
		f, p := parseNumber(v)
		if p != numberOK {
			return numberMessage(name, p)
		}
		row.Elevation = f
	case colShiftState:
		if isNull(trimSpace(cell)) {
			return ""
		}
		if err := records.CheckShiftState(view(cell)); err != nil {
			return "shift_state " + err.Error()
		}
		row.ShiftState, row.ShiftStateValid = shiftState(cell), true
	}
	return ""
}

// plainASCII reports whether b holds only ASCII characters other than NUL.
func plainASCII(b []byte) bool {
	for _, c := range b {
		if c == 0 || c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// shiftState copies a shift state out of the reused buffer; the usual values are constants
// so that the common rows do not allocate.
func shiftState(cell []byte) string {
	switch string(cell) { // the compiler compares without converting
	case "D":
		return "D"
	case "R":
		return "R"
	case "N":
		return "N"
	case "P":
		return "P"
	}
	return string(cell)
}
