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
	End() error
	Close() error
}

// New returns the encoder of format f writing to w; XLSX gets the default
// XLSXOptions. An unknown format is an error wrapping ErrUnknownFormat.
func New(f Format, w io.Writer) (Encoder, error) {
	switch f {
	case CSV:
		return NewCSV(w), nil
	case JSON:
		return NewJSON(w), nil
	case NDJSON:
		return NewNDJSON(w), nil
	case XLSX:
		return NewXLSX(w, XLSXOptions{}), nil
	}
	return nil, fmt.Errorf("%w %q: allowed values are csv, json, ndjson, xlsx", ErrUnknownFormat, string(f))
}

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
