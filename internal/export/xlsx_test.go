package export

import (
	"bytes"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/vehicle-data/vehicle-data/internal/records"
)

// writeXLSX encodes recs and opens the result with excelize.
func writeXLSX(t *testing.T, opts XLSXOptions, recs []records.Record) *excelize.File {
	t.Helper()
	var out bytes.Buffer
	e := NewXLSX(&out, opts)
	defer e.Close()
	if err := e.Begin(); err != nil {
		t.Fatalf("Begin: %v", err)
	}
	for i := range recs {
		if err := e.Write(&recs[i]); err != nil {
			t.Fatalf("Write(record %d): %v", i, err)
		}
	}
	if err := e.End(); err != nil {
		t.Fatalf("End: %v", err)
	}
	f, err := excelize.OpenReader(&out)
	if err != nil {
		t.Fatalf("opening the workbook: %v", err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

// cell is what a reader finds in a cell.
type cell struct {
	raw string
	typ excelize.CellType
}

func readCell(t *testing.T, f *excelize.File, sheet, ref string) cell {
	t.Helper()
	raw, err := f.GetCellValue(sheet, ref, excelize.Options{RawCellValue: true})
	if err != nil {
		t.Fatalf("%s!%s: %v", sheet, ref, err)
	}
	typ, err := f.GetCellType(sheet, ref)
	if err != nil {
		t.Fatalf("%s!%s type: %v", sheet, ref, err)
	}
	return cell{raw, typ}
}

func cellStyle(t *testing.T, f *excelize.File, sheet, ref string) *excelize.Style {
	t.Helper()
	id, err := f.GetCellStyle(sheet, ref)
	if err != nil {
		t.Fatalf("%s!%s style: %v", sheet, ref, err)
	}
	style, err := f.GetStyle(id)
	if err != nil {
		t.Fatalf("style %d: %v", id, err)
	}
	return style
}

// Numbers have no cell type attribute: excelize reports them as Unset.
const numberCell = excelize.CellTypeUnset

func checkHeader(t *testing.T, f *excelize.File, sheet string) {
	t.Helper()
	for i, c := range columns {
		ref, _ := excelize.CoordinatesToCellName(i+1, 1)
		if got := readCell(t, f, sheet, ref); got.raw != c.name || got.typ != excelize.CellTypeInlineString {
			t.Errorf("%s!%s = %+v, want the text %q", sheet, ref, got, c.name)
		}
		if style := cellStyle(t, f, sheet, ref); style.Font == nil || !style.Font.Bold {
			t.Errorf("%s!%s is not bold", sheet, ref)
		}
	}
}

func TestXLSXCells(t *testing.T) {
	full := plainRecord(1)
	full.Speed = ptr(12.75)
	parked := records.Record{
		ID: 9007199254740993, VehicleID: `<veh & "1">`, Timestamp: time.Date(2022, 7, 12, 18, 5, 17, 400_000_000, time.UTC),
		Odometer: 36684.7, SOC: 0, Elevation: -3.5,
	}
	old := records.Record{
		ID: 3, VehicleID: "日本", Timestamp: time.Date(1850, 1, 2, 3, 4, 5, 0, time.UTC),
		Speed: ptr(0.0), SOC: 100, ShiftState: ptr("NULL"),
	}
	f := writeXLSX(t, XLSXOptions{}, []records.Record{full, parked, old})

	if got := f.GetSheetList(); len(got) != 1 || got[0] != SheetName {
		t.Fatalf("sheets %q, want [%s]", got, SheetName)
	}
	checkHeader(t, f, SheetName)

	str := excelize.CellTypeInlineString
	tests := []struct {
		ref  string
		want cell
	}{
		{"A2", cell{"1", numberCell}},
		{"B2", cell{"06ab31a9-b35d-4e47-8e44-9c35feb1bfae", str}},
		{"D2", cell{"12.75", numberCell}},
		{"E2", cell{"40800.6", numberCell}},
		{"F2", cell{"58", numberCell}},
		{"G2", cell{"92", numberCell}},
		{"H2", cell{"D", str}},

		{"A3", cell{"9007199254740993", numberCell}},
		{"B3", cell{`<veh & "1">`, str}},
		{"D3", cell{"", excelize.CellTypeUnset}}, // null speed: no cell
		{"E3", cell{"36684.7", numberCell}},
		{"F3", cell{"0", numberCell}},
		{"G3", cell{"-3.5", numberCell}},
		{"H3", cell{"", excelize.CellTypeUnset}},

		{"B4", cell{"日本", str}},
		{"C4", cell{"1850-01-02T03:04:05Z", str}}, // Excel has no dates before 1900
		{"D4", cell{"0", numberCell}},
		{"H4", cell{"NULL", str}},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			if got := readCell(t, f, SheetName, tt.ref); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}

	t.Run("timestamps are date serials with a date format", func(t *testing.T) {
		for ref, want := range map[string]time.Time{"C2": full.Timestamp, "C3": parked.Timestamp} {
			got := readCell(t, f, SheetName, ref)
			if got.typ != numberCell {
				t.Fatalf("%s has type %v, want a number", ref, got.typ)
			}
			serial, err := strconv.ParseFloat(got.raw, 64)
			if err != nil {
				t.Fatalf("%s = %q, not a number: %v", ref, got.raw, err)
			}
			if back := fromSerial(serial); back.Sub(want).Abs() > 10*time.Microsecond {
				t.Errorf("%s = %v (%v), want %v", ref, serial, back, want)
			}
			style := cellStyle(t, f, SheetName, ref)
			if style.CustomNumFmt == nil || *style.CustomNumFmt != TimestampFormat {
				t.Errorf("%s number format %v, want %q", ref, style.CustomNumFmt, TimestampFormat)
			}
		}
		// Rendered with the format (excelize's renderer drops the
		// milliseconds Excel shows, so only the rest is compared).
		shown, err := f.GetCellValue(SheetName, "C3")
		if err != nil {
			t.Fatal(err)
		}
		if want := "2022-07-12 18:05:17."; !strings.HasPrefix(shown, want) {
			t.Errorf("C3 shows %q, want it to start with %q", shown, want)
		}
	})

	t.Run("column widths", func(t *testing.T) {
		for i, c := range columns {
			name, _ := excelize.ColumnNumberToName(i + 1)
			if got, err := f.GetColWidth(SheetName, name); err != nil || got != c.width {
				t.Errorf("column %s width %v (%v), want %v", name, got, err, c.width)
			}
		}
	})
}

// fromSerial converts an Excel serial from 1900-03-01 on back to a time,
// independently of excelSerial.
func fromSerial(serial float64) time.Time {
	epoch := time.Date(1899, 12, 30, 0, 0, 0, 0, time.UTC)
	days := math.Floor(serial)
	return epoch.AddDate(0, 0, int(days)).Add(time.Duration(math.Round((serial - days) * 86400e9)))
}

func TestExcelSerial(t *testing.T) {
	tests := []struct {
		name   string
		in     time.Time
		want   float64
		wantOK bool
	}{
		{"before 1900", time.Date(1899, 12, 31, 23, 59, 59, 0, time.UTC), 0, false},
		{"first day", time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), 1, true},
		{"last day before the phantom 29 February", time.Date(1900, 2, 28, 18, 0, 0, 0, time.UTC), 59.75, true},
		{"first day after it", time.Date(1900, 3, 1, 0, 0, 0, 0, time.UTC), 61, true},
		{"noon", time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC), 45444.5, true},
		{"offset is converted", time.Date(2024, 6, 1, 14, 0, 0, 0, time.FixedZone("", 2*3600)), 45444.5, true},
		{"milliseconds", time.Date(2024, 6, 1, 0, 0, 0, 864_000_000, time.UTC), 45444.00001, true},
		{"last day", time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), 2958465, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := excelSerial(tt.in)
			if ok != tt.wantOK || math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("excelSerial(%v) = %v, %v, want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
			}
		})
	}
	t.Run("random round trip", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(13, 14))
		for range 10_000 {
			in := randomTime(rng)
			if in.Year() < 1901 {
				continue
			}
			serial, ok := excelSerial(in)
			if !ok {
				t.Fatalf("excelSerial(%v) not ok", in)
			}
			// A float64 serial of year 9999 resolves 40µs; ours are ms.
			if back := fromSerial(serial); back.Sub(in).Abs() > 50*time.Microsecond {
				t.Fatalf("excelSerial(%v) = %v, which is %v", in, serial, back)
			}
		}
	})
}

func TestXLSXSheets(t *testing.T) {
	tests := []struct {
		rows       int
		wantSheets []int // data rows per sheet
	}{
		{0, []int{0}},
		{1, []int{1}},
		{3, []int{3}},
		{4, []int{3, 1}},
		{6, []int{3, 3}},
		{8, []int{3, 3, 2}},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.rows), func(t *testing.T) {
			recs := make([]records.Record, tt.rows)
			for i := range recs {
				recs[i] = plainRecord(int64(i + 1))
			}
			f := writeXLSX(t, XLSXOptions{RowsPerSheet: 3}, recs)
			sheets := f.GetSheetList()
			if len(sheets) != len(tt.wantSheets) {
				t.Fatalf("sheets %q, want %d", sheets, len(tt.wantSheets))
			}
			id := 1
			for i, sheet := range sheets {
				wantName := SheetName
				if i > 0 {
					wantName += "_" + strconv.Itoa(i+1)
				}
				if sheet != wantName {
					t.Errorf("sheet %d named %q, want %q", i, sheet, wantName)
				}
				checkHeader(t, f, sheet)
				rows, err := f.GetRows(sheet)
				if err != nil {
					t.Fatal(err)
				}
				if got := len(rows) - 1; got != tt.wantSheets[i] {
					t.Errorf("sheet %s has %d data rows, want %d", sheet, got, tt.wantSheets[i])
				}
				for _, row := range rows[1:] {
					if row[0] != strconv.Itoa(id) {
						t.Errorf("sheet %s: id %s, want %d", sheet, row[0], id)
					}
					id++
				}
			}
			if active := f.GetActiveSheetIndex(); active != 0 {
				t.Errorf("active sheet %d, want the first", active)
			}
		})
	}
}

func TestXLSXOptionsChecked(t *testing.T) {
	tests := []struct {
		name string
		opts XLSXOptions
	}{
		{"negative rows per sheet", XLSXOptions{RowsPerSheet: -1}},
		{"more rows per sheet than Excel has", XLSXOptions{RowsPerSheet: MaxRowsPerSheet + 1}},
		{"negative max rows", XLSXOptions{MaxRows: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := NewXLSX(&bytes.Buffer{}, tt.opts)
			defer e.Close()
			if err := e.Begin(); err == nil {
				t.Error("Begin succeeded, want an error")
			}
		})
	}
}

func TestXLSXMaxRows(t *testing.T) {
	dir := t.TempDir()
	e := NewXLSX(&bytes.Buffer{}, XLSXOptions{MaxRows: 2, RowsPerSheet: 1, TmpDir: dir})
	defer e.Close()
	if err := e.Begin(); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		r := plainRecord(int64(i))
		if err := e.Write(&r); err != nil {
			t.Fatalf("Write(%d): %v", i, err)
		}
	}
	r := plainRecord(3)
	if err := e.Write(&r); !errors.Is(err, ErrTooManyRows) {
		t.Errorf("third Write: got %v, want ErrTooManyRows", err)
	}
	if err := e.End(); !errors.Is(err, ErrTooManyRows) {
		t.Errorf("End: got %v, want ErrTooManyRows", err)
	}
}

// excelize spills a sheet past 16 MiB to a temporary file; it must be gone
// after End, and after Close when the export is abandoned.
func TestXLSXRemovesTemporaryFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("writes about 100,000 rows")
	}
	for _, finish := range []string{"End", "Close without End", "error"} {
		t.Run(finish, func(t *testing.T) {
			dir := t.TempDir()
			e := NewXLSX(io.Discard, XLSXOptions{TmpDir: dir})
			defer e.Close()
			if err := e.Begin(); err != nil {
				t.Fatal(err)
			}
			r := plainRecord(1)
			spilled := false
			for i := 1; i <= 200_000 && !spilled; i++ {
				if err := e.Write(&r); err != nil {
					t.Fatal(err)
				}
				spilled = i%1000 == 0 && countFiles(t, dir) > 0
			}
			if !spilled {
				t.Fatal("no temporary file while writing: the test proves nothing")
			}
			switch finish {
			case "End":
				if err := e.End(); err != nil {
					t.Fatal(err)
				}
			case "Close without End":
				if err := e.Close(); err != nil {
					t.Fatal(err)
				}
			case "error":
				r.Elevation = math.NaN()
				if err := e.Write(&r); err == nil {
					t.Fatal("Write of NaN succeeded")
				}
			}
			if n := countFiles(t, dir); n != 0 {
				t.Errorf("%d temporary files left, want 0", n)
			}
		})
	}
}

func countFiles(t *testing.T, dir string) int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}
