package export

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/vehicle-data/vehicle-data/internal/records"
)

// MaxRowsPerSheet is the number of data rows a worksheet holds: Excel's
// 1,048,576 rows less the header.
const MaxRowsPerSheet = excelize.TotalRows - 1

// SheetName is the name of the first worksheet; further ones are named
// SheetName_2, SheetName_3, ...
const SheetName = "vehicle_data"

// TimestampFormat is the Excel number format of the timestamp column.
const TimestampFormat = "yyyy-mm-dd hh:mm:ss.000"

// ErrTooManyRows is returned by XLSX Write past XLSXOptions.MaxRows.
var ErrTooManyRows = errors.New("export: too many rows for an XLSX export")

// XLSXOptions tunes the XLSX encoder. The zero value is ready to use.
type XLSXOptions struct {
	// RowsPerSheet is how many data rows a sheet takes before the export
	// continues on a new one; 0 means MaxRowsPerSheet, the most Excel allows.
	RowsPerSheet int
	// MaxRows bounds the whole workbook, which is held until End (memory
	// and temporary files grow with it); 0 means no bound. The caller
	// should check the row count first with Fits and answer 413: this is
	// the backstop.
	MaxRows int
	// TmpDir is where excelize spills sheets larger than 16 MiB; "" means
	// the system's temporary directory.
	TmpDir string
}

// Fits reports whether a workbook of rows data rows stays within MaxRows: the one reading of
// the limit, for the caller's count check and the encoder's backstop alike.
func (o XLSXOptions) Fits(rows int64) bool { return o.MaxRows == 0 || rows <= int64(o.MaxRows) }

// columns of the sheet with their widths in characters.
var columns = [...]struct {
	name  string
	width float64
}{
	{"id", 12},
	{"vehicle_id", 38}, // a UUID is 36
	{"timestamp", 24},
	{"speed", 8},
	{"odometer", 12},
	{"soc", 6},
	{"elevation", 10},
	{"shift_state", 12},
}

// XLSXEncoder assembles a workbook with excelize's StreamWriter and writes it
// to the writer in End. Rows past a sheet's limit continue on a new sheet.
type XLSXEncoder struct {
	w    io.Writer
	opts XLSXOptions

	file        *excelize.File
	sheet       *excelize.StreamWriter
	sheets      int
	sheetRows   int // data rows in the current sheet
	rows        int // data rows in the workbook
	headerStyle int
	timeStyle   int
	row         []any // reused between rows

	state encoderState
	err   error
}

var _ Encoder = (*XLSXEncoder)(nil)

// NewXLSX returns an XLSX encoder. Options are checked by Begin.
func NewXLSX(w io.Writer, opts XLSXOptions) *XLSXEncoder {
	return &XLSXEncoder{w: w, opts: opts, row: make([]any, len(columns))}
}

// Begin creates the workbook and its first sheet.
func (e *XLSXEncoder) Begin() error {
	if e.err != nil {
		return e.err
	}
	if e.state != stateNew {
		return e.fail(errTwiceBegun)
	}
	e.state = stateBegun
	switch {
	case e.opts.RowsPerSheet == 0:
		e.opts.RowsPerSheet = MaxRowsPerSheet
	case e.opts.RowsPerSheet < 0 || e.opts.RowsPerSheet > MaxRowsPerSheet:
		return e.fail(fmt.Errorf("export: XLSX rows per sheet %d outside 1..%d", e.opts.RowsPerSheet, MaxRowsPerSheet))
	}
	if e.opts.MaxRows < 0 {
		return e.fail(fmt.Errorf("export: XLSX max rows %d is negative", e.opts.MaxRows))
	}

	e.file = excelize.NewFile(excelize.Options{TmpDir: e.opts.TmpDir})
	var err error
	if e.headerStyle, err = e.file.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true}}); err != nil {
		return e.fail(fmt.Errorf("export: XLSX header style: %w", err))
	}
	numFmt := TimestampFormat
	if e.timeStyle, err = e.file.NewStyle(&excelize.Style{CustomNumFmt: &numFmt}); err != nil {
		return e.fail(fmt.Errorf("export: XLSX timestamp style: %w", err))
	}
	if err := e.file.SetSheetName("Sheet1", SheetName); err != nil {
		return e.fail(fmt.Errorf("export: XLSX sheet name: %w", err))
	}
	return e.startSheet(SheetName)
}

// startSheet opens a stream on the existing sheet name, sets its layout and
// writes the header row.
func (e *XLSXEncoder) startSheet(name string) error {
	sw, err := e.file.NewStreamWriter(name)
	if err != nil {
		return e.fail(fmt.Errorf("export: XLSX sheet %s: %w", name, err))
	}
	e.sheet = sw
	e.sheets++
	e.sheetRows = 0
	for i, c := range columns {
		if err := sw.SetColWidth(i+1, i+1, c.width); err != nil {
			return e.fail(fmt.Errorf("export: XLSX column width: %w", err))
		}
	}
	// Keep the header in view while scrolling.
	if err := sw.SetPanes(&excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}); err != nil {
		return e.fail(fmt.Errorf("export: XLSX panes: %w", err))
	}
	header := make([]any, len(columns))
	for i, c := range columns {
		header[i] = excelize.Cell{StyleID: e.headerStyle, Value: c.name}
	}
	if err := sw.SetRow("A1", header); err != nil {
		return e.fail(fmt.Errorf("export: XLSX header: %w", err))
	}
	return nil
}

// Write adds r as a row, starting a new sheet when the current one is full.
func (e *XLSXEncoder) Write(r *records.Record) error {
	if e.err != nil {
		return e.err
	}
	if e.state != stateBegun {
		return e.fail(e.misuse())
	}
	if err := checkFinite(r); err != nil {
		return e.fail(err)
	}
	if !e.opts.Fits(int64(e.rows) + 1) {
		return e.fail(fmt.Errorf("%w: more than %d", ErrTooManyRows, e.opts.MaxRows))
	}
	if e.sheetRows == e.opts.RowsPerSheet {
		if err := e.sheet.Flush(); err != nil {
			return e.fail(fmt.Errorf("export: XLSX flush sheet: %w", err))
		}
		name := SheetName + "_" + strconv.Itoa(e.sheets+1)
		if _, err := e.file.NewSheet(name); err != nil {
			return e.fail(fmt.Errorf("export: XLSX new sheet %s: %w", name, err))
		}
		if err := e.startSheet(name); err != nil {
			return err
		}
	}

	row := e.row
	row[0] = r.ID
	row[1] = r.VehicleID
	if serial, ok := excelSerial(r.Timestamp); ok {
		row[2] = excelize.Cell{StyleID: e.timeStyle, Value: serial}
	} else {
		// Excel has no dates before 1900: keep the instant readable as text.
		row[2] = r.Timestamp.UTC().Format(time.RFC3339Nano)
	}
	row[3] = nil // a nil value is skipped: an empty cell
	if r.Speed != nil {
		row[3] = *r.Speed
	}
	row[4] = r.Odometer
	row[5] = int64(r.SOC)
	row[6] = r.Elevation
	row[7] = nil
	if r.ShiftState != nil {
		row[7] = *r.ShiftState
	}
	if err := e.sheet.SetRow("A"+strconv.Itoa(e.sheetRows+2), row); err != nil {
		return e.fail(fmt.Errorf("export: XLSX row: %w", err))
	}
	e.sheetRows++
	e.rows++
	return nil
}

// End finishes the last sheet, writes the workbook and removes excelize's
// temporary files.
func (e *XLSXEncoder) End() error {
	if e.err != nil {
		return e.err
	}
	if e.state != stateBegun {
		return e.fail(e.misuse())
	}
	e.state = stateEnded
	if err := e.sheet.Flush(); err != nil {
		return e.fail(fmt.Errorf("export: XLSX flush sheet: %w", err))
	}
	if err := e.file.Write(e.w); err != nil {
		return e.fail(fmt.Errorf("export: write XLSX: %w", err))
	}
	return e.Close()
}

// Close removes excelize's temporary files. It is safe to call more than
// once and after End.
func (e *XLSXEncoder) Close() error {
	if e.file == nil {
		return nil
	}
	err := e.file.Close()
	e.file, e.sheet = nil, nil
	if err != nil {
		return fmt.Errorf("export: XLSX cleanup: %w", err)
	}
	return nil
}

// Rows returns the number of records written so far.
func (e *XLSXEncoder) Rows() int64 { return int64(e.rows) }

// Sheets returns the number of worksheets started so far.
func (e *XLSXEncoder) Sheets() int { return e.sheets }

func (e *XLSXEncoder) misuse() error {
	if e.state == stateNew {
		return errNotBegun
	}
	return errEnded
}

// fail records err and releases the workbook at once, so temporary files go
// even when the caller forgets Close after an error.
func (e *XLSXEncoder) fail(err error) error {
	e.err = err
	_ = e.Close()
	return err
}

const secondsPerDay = 24 * 60 * 60

var (
	// Excel's day 0 is 1899-12-30 for every date from 1900-03-01 on.
	excelEpoch = time.Date(1899, 12, 30, 0, 0, 0, 0, time.UTC).Unix()
	// Excel's serials start at 1 on 1900-01-01.
	excelFirstDay = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	// Excel believes 1900 was a leap year: serial 60 is a 29 February that
	// never was, so earlier dates are one day lower.
	excelLeapBug = time.Date(1900, 3, 1, 0, 0, 0, 0, time.UTC).Unix()
)

// excelSerial returns t (in UTC) as an Excel date serial of the 1900 date
// system: days since the epoch with the time of day as the fraction. It is
// false before 1900, which Excel cannot represent.
func excelSerial(t time.Time) (float64, bool) {
	unix := t.Unix()
	if unix < excelFirstDay {
		return 0, false
	}
	secs := unix - excelEpoch
	if unix < excelLeapBug {
		secs -= secondsPerDay
	}
	days, rem := secs/secondsPerDay, secs%secondsPerDay
	return float64(days) + (float64(rem)*1e9+float64(t.Nanosecond()))/(secondsPerDay*1e9), true
}
