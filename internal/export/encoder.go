package export

import (
	"errors"
	"fmt"
	"io"

	"github.com/vehicle-data/vehicle-data/internal/records"
)

// Encoder writes records to an io.Writer in one format.
//
// Call Begin once, Write for each record, then End to finish the document
// (the closing bracket of JSON, the whole workbook of XLSX). Always call
// Close afterwards, also after an error: it releases what the encoder holds
// (the temporary files of XLSX). After an error the encoder is spent: every
// later call returns the same error, and the output must be treated as
// truncated.
type Encoder interface {
	Begin() error
	Write(r *records.Record) error
	// Flush hands buffered bytes to the writer so a slow export shows
	// progress. XLSX can only be written whole, so it does nothing there.
	Flush() error
	End() error
	Close() error
}

// New returns the encoder of format f writing to w; XLSX gets the default
// XLSXOptions. An unknown format yields an encoder whose every method fails.
func New(f Format, w io.Writer) Encoder {
	switch f {
	case CSV:
		return NewCSV(w)
	case JSON:
		return NewJSON(w)
	case NDJSON:
		return NewNDJSON(w)
	case XLSX:
		return NewXLSX(w, XLSXOptions{})
	}
	return failed{fmt.Errorf("%w %q: allowed values are csv, json, ndjson, xlsx", ErrUnknownFormat, string(f))}
}

// failed is the encoder of an unknown format.
type failed struct{ err error }

func (e failed) Begin() error                { return e.err }
func (e failed) Write(*records.Record) error { return e.err }
func (e failed) Flush() error                { return e.err }
func (e failed) End() error                  { return e.err }
func (e failed) Close() error                { return nil }

// Errors of misuse, returned instead of writing a malformed document.
var (
	errNotBegun   = errors.New("export: Write or End before Begin")
	errTwiceBegun = errors.New("export: Begin called twice")
	errEnded      = errors.New("export: encoder already ended")
)

func errNotFinite(id int64, field string) error {
	return fmt.Errorf("export: record %d: %s is not a finite number", id, field)
}

// checkFinite rejects NaN and ±Inf, which the contract forbids and which
// neither JSON nor the upload reader can represent.
func checkFinite(r *records.Record) error {
	switch {
	case r.Speed != nil && !isFinite(*r.Speed):
		return errNotFinite(r.ID, "speed")
	case !isFinite(r.Odometer):
		return errNotFinite(r.ID, "odometer")
	case !isFinite(r.Elevation):
		return errNotFinite(r.ID, "elevation")
	}
	return nil
}

func isFinite(f float64) bool { return f-f == 0 }
