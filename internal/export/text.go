package export

import (
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/vehicle-data/vehicle-data/internal/records"
)

// bufferSize is how much encoded text is collected before it is handed to
// the writer: large enough to make writes cheap, small enough that the first
// bytes of an export leave early.
const bufferSize = 64 << 10

// CSVHeader is the first line of a CSV export.
const CSVHeader = "id,vehicle_id,timestamp,speed,odometer,soc,elevation,shift_state"

type textKind int

const (
	kindCSV textKind = iota
	kindJSON
	kindNDJSON
)

type encoderState int

const (
	stateNew encoderState = iota
	stateBegun
	stateEnded
)

// TextEncoder encodes CSV, JSON or NDJSON. Each record is appended to one
// reused buffer, so Write allocates nothing.
type TextEncoder struct {
	kind  textKind
	w     io.Writer
	buf   []byte
	rows  int64
	state encoderState
	err   error // sticky: the first failure ends the export
}

var _ Encoder = (*TextEncoder)(nil)

// NewCSV returns an encoder of CSV with a header line, lines ending in "\n",
// null as an empty cell. Its output can be uploaded again.
func NewCSV(w io.Writer) *TextEncoder { return newText(kindCSV, w) }

// NewJSON returns an encoder of one JSON array of records (`[]` when empty),
// byte for byte what encoding/json makes of the same record.
func NewJSON(w io.Writer) *TextEncoder { return newText(kindJSON, w) }

// NewNDJSON returns an encoder of one JSON record per line.
func NewNDJSON(w io.Writer) *TextEncoder { return newText(kindNDJSON, w) }

func newText(kind textKind, w io.Writer) *TextEncoder {
	// The headroom keeps the longest possible row from growing the buffer.
	return &TextEncoder{kind: kind, w: w, buf: make([]byte, 0, bufferSize+8<<10)}
}

// Begin writes the CSV header or the opening bracket of a JSON array.
func (e *TextEncoder) Begin() error {
	if e.err != nil {
		return e.err
	}
	if e.state != stateNew {
		return e.fail(errTwiceBegun)
	}
	e.state = stateBegun
	switch e.kind {
	case kindCSV:
		e.buf = append(e.buf, CSVHeader+"\n"...)
	case kindJSON:
		e.buf = append(e.buf, '[')
	}
	return nil
}

// Write encodes r. A number that is NaN or infinite is an error.
func (e *TextEncoder) Write(r *records.Record) error {
	if e.err != nil {
		return e.err
	}
	if e.state != stateBegun {
		return e.fail(e.misuse())
	}
	if err := checkFinite(r); err != nil {
		return e.fail(err)
	}
	switch e.kind {
	case kindCSV:
		e.buf = appendCSVRecord(e.buf, r)
	case kindJSON:
		if e.rows > 0 {
			e.buf = append(e.buf, ",\n"...)
		}
		e.buf = appendJSONRecord(e.buf, r)
	case kindNDJSON:
		e.buf = appendJSONRecord(e.buf, r)
		e.buf = append(e.buf, '\n')
	}
	e.rows++
	if len(e.buf) >= bufferSize {
		return e.Flush()
	}
	return nil
}

// Flush writes the buffered bytes to the writer.
func (e *TextEncoder) Flush() error {
	if e.err != nil {
		return e.err
	}
	if len(e.buf) == 0 {
		return nil
	}
	_, err := e.w.Write(e.buf)
	e.buf = e.buf[:0]
	if err != nil {
		return e.fail(fmt.Errorf("export: write: %w", err))
	}
	return nil
}

// End closes the JSON array and flushes.
func (e *TextEncoder) End() error {
	if e.err != nil {
		return e.err
	}
	if e.state != stateBegun {
		return e.fail(e.misuse())
	}
	e.state = stateEnded
	if e.kind == kindJSON {
		e.buf = append(e.buf, "]\n"...)
	}
	return e.Flush()
}

// Close releases nothing: a text encoder holds only its buffer.
func (e *TextEncoder) Close() error { return nil }

// Rows returns the number of records written so far.
func (e *TextEncoder) Rows() int64 { return e.rows }

func (e *TextEncoder) misuse() error {
	if e.state == stateNew {
		return errNotBegun
	}
	return errEnded
}

func (e *TextEncoder) fail(err error) error {
	e.err = err
	return err
}

// appendCSVRecord appends one CSV line in CSVHeader's column order.
func appendCSVRecord(b []byte, r *records.Record) []byte {
	b = strconv.AppendInt(b, r.ID, 10)
	b = append(b, ',')
	b = appendCSVField(b, r.VehicleID)
	b = append(b, ',')
	b = r.Timestamp.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, ',')
	if r.Speed != nil {
		b = appendFloat(b, *r.Speed)
	}
	b = append(b, ',')
	b = appendFloat(b, r.Odometer)
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(r.SOC), 10)
	b = append(b, ',')
	b = appendFloat(b, r.Elevation)
	b = append(b, ',')
	if r.ShiftState != nil {
		b = appendCSVField(b, *r.ShiftState)
	}
	return append(b, '\n')
}

// appendJSONRecord appends one record as a JSON object with the keys in the
// order of the list endpoint's results.
func appendJSONRecord(b []byte, r *records.Record) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, r.ID, 10)
	b = append(b, `,"vehicle_id":`...)
	b = appendJSONString(b, r.VehicleID)
	b = append(b, `,"timestamp":"`...)
	b = r.Timestamp.UTC().AppendFormat(b, time.RFC3339Nano) // never needs escaping
	b = append(b, `","speed":`...)
	if r.Speed != nil {
		b = appendFloat(b, *r.Speed)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"odometer":`...)
	b = appendFloat(b, r.Odometer)
	b = append(b, `,"soc":`...)
	b = strconv.AppendInt(b, int64(r.SOC), 10)
	b = append(b, `,"elevation":`...)
	b = appendFloat(b, r.Elevation)
	b = append(b, `,"shift_state":`...)
	if r.ShiftState != nil {
		b = appendJSONString(b, *r.ShiftState)
	} else {
		b = append(b, "null"...)
	}
	return append(b, '}')
}
