package csvrows

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"math"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

const header = "timestamp,speed,odometer,soc,elevation,shift_state\n"

// result is one outcome of Next that is not an error.
type result struct {
	row    Row
	rowErr *RowError
}

// readAll reads input to the end and returns every row and row error, and the error that
// ended reading (nil for io.EOF).
func readAll(t *testing.T, input, vehicleID string) ([]result, error) {
	t.Helper()
	return readAllSize(t, input, vehicleID, readBufferSize)
}

// readAllSize is readAll with a read buffer of bufSize bytes.
func readAllSize(t *testing.T, input, vehicleID string, bufSize int) ([]result, error) {
	t.Helper()
	r := &Reader{s: newScanner(strings.NewReader(input), bufSize), vehicleID: vehicleID}
	var got []result
	for range len(input) + 2 { // every record consumes input: more calls mean a loop
		row, rowErr, err := r.Next()
		switch {
		case err == io.EOF:
			return got, nil
		case err != nil:
			if rowErr != nil || row != (Row{}) {
				t.Fatalf("Next returned an error and a row (%+v) or row error (%+v)", row, rowErr)
			}
			// Errors are final.
			if _, _, again := r.Next(); again != err {
				t.Fatalf("Next after %v returned %v, want the same error", err, again)
			}
			return got, err
		case rowErr != nil:
			if row != (Row{}) {
				t.Fatalf("Next returned both a row %+v and a row error %+v", row, rowErr)
			}
			got = append(got, result{rowErr: rowErr})
		default:
			got = append(got, result{row: row})
		}
	}
	t.Fatalf("reader did not stop after %d calls", len(input)+2)
	return nil, nil
}

// baseRow is what the row "2024-06-01T12:00:00Z,55.5,1234.5,80,10.5,D" on line 2 reads as.
func baseRow() Row {
	return Row{
		Line:            2,
		Timestamp:       time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC),
		Speed:           55.5,
		SpeedValid:      true,
		Odometer:        1234.5,
		SOC:             80,
		Elevation:       10.5,
		ShiftState:      "D",
		ShiftStateValid: true,
	}
}

var baseCells = []string{"2024-06-01T12:00:00Z", "55.5", "1234.5", "80", "10.5", "D"}

func checkRow(t *testing.T, got, want Row) {
	t.Helper()
	if !got.Timestamp.Equal(want.Timestamp) {
		t.Errorf("Timestamp = %v, want %v", got.Timestamp, want.Timestamp)
	}
	got.Timestamp, want.Timestamp = time.Time{}, time.Time{}
	if got != want {
		t.Errorf("row = %+v, want %+v", got, want)
	}
	for name, f := range map[string]float64{"speed": got.Speed, "odometer": got.Odometer, "elevation": got.Elevation} {
		if math.Signbit(f) && f == 0 {
			t.Errorf("%s is -0, want 0", name)
		}
	}
}

func TestHeader(t *testing.T) {
	allMissing := []string{"timestamp", "speed", "odometer", "soc", "elevation", "shift_state"}
	tests := []struct {
		name  string
		input string
		want  *HeaderError // nil: valid
	}{
		{"valid", header, nil},
		{"valid without line end", strings.TrimSuffix(header, "\n"), nil},
		{"any order", "shift_state,elevation,soc,odometer,speed,timestamp\n", nil},
		{"id and vehicle_id", "id,vehicle_id,timestamp,speed,odometer,soc,elevation,shift_state\n", nil},
		{"names trimmed", " timestamp ,\tspeed,odometer , soc,elevation,shift_state \r\n", nil},
		{"quoted names", `"timestamp","speed","odometer","soc","elevation","shift_state"` + "\n", nil},
		{"after blank lines", "\n\r\n" + header, nil},
		{"with BOM", "\xEF\xBB\xBF" + header, nil},
		{"empty file", "", &HeaderError{Missing: allMissing}},
		{"only BOM", "\xEF\xBB\xBF", &HeaderError{Missing: allMissing}},
		{"only blank lines", "\n\r\n\n", &HeaderError{Missing: allMissing}},
		{"missing columns", "timestamp,speed,odometer,shift_state\n", &HeaderError{Missing: []string{"soc", "elevation"}}},
		{"unknown column", "timestamp,speed,odometer,soc,elevation,shift_state,foo\n", &HeaderError{Unknown: []string{"foo"}}},
		{"unknown named twice", "foo,timestamp,speed,odometer,soc,elevation,shift_state,foo\n", &HeaderError{Unknown: []string{"foo"}}},
		{"empty column name", "timestamp,speed,odometer,soc,elevation,shift_state,\n", &HeaderError{Unknown: []string{""}}},
		{"case-sensitive", "Timestamp,speed,odometer,soc,elevation,shift_state\n", &HeaderError{Missing: []string{"timestamp"}, Unknown: []string{"Timestamp"}}},
		{"duplicate column", "timestamp,speed,odometer,soc,elevation,shift_state,speed,speed\n", &HeaderError{Duplicate: []string{"speed"}}},
		{"duplicate id", "id,timestamp,speed,odometer,soc,elevation,shift_state,id\n", &HeaderError{Duplicate: []string{"id"}}},
		{"duplicate after trimming", "timestamp,speed, speed,odometer,soc,elevation,shift_state\n", &HeaderError{Duplicate: []string{"speed"}}},
		{
			"all problems", "foo,timestamp,timestamp,speed,odometer,shift_state,bar\n",
			&HeaderError{Missing: []string{"soc", "elevation"}, Unknown: []string{"foo", "bar"}, Duplicate: []string{"timestamp"}},
		},
		{"header is a data row", "2024-06-01,1,2,3,4,D\n", &HeaderError{
			Missing: allMissing, Unknown: []string{"2024-06-01", "1", "2", "3", "4", "D"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(strings.NewReader(tt.input), "veh1")
			err := r.ReadHeader()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("ReadHeader error: %v", err)
				}
				return
			}
			var got *HeaderError
			if !errors.As(err, &got) {
				t.Fatalf("ReadHeader error = %v (%T), want *HeaderError", err, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ReadHeader error = %#v, want %#v", got, tt.want)
			}
			if _, _, err2 := r.Next(); err2 != err {
				t.Errorf("Next after a header error = %v, want the header error", err2)
			}
		})
	}
}

func TestHeaderErrorMessage(t *testing.T) {
	tests := []struct {
		err  *HeaderError
		want string
	}{
		{&HeaderError{Missing: []string{"soc", "elevation"}, Unknown: []string{"foo"}}, "missing column(s): soc, elevation; unknown column(s): foo"},
		{&HeaderError{Duplicate: []string{"speed"}}, "duplicate column(s): speed"},
		{&HeaderError{Unknown: []string{"", "a,b", "x y", "tab\t"}}, `unknown column(s): "", "a,b", "x y", "tab\t"`},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestHeaderLongUnknownName(t *testing.T) {
	name := strings.Repeat("é", 300) // 600 bytes
	_, err := readAll(t, header[:len(header)-1]+","+name+"\n", "veh1")
	var herr *HeaderError
	if !errors.As(err, &herr) || len(herr.Unknown) != 1 {
		t.Fatalf("error = %v, want a HeaderError with one unknown column", err)
	}
	if got := herr.Unknown[0]; len(got) > maxReportedBytes+len("…") || !strings.HasSuffix(got, "é…") {
		t.Errorf("unknown name = %q (%d bytes), want it cut to %d bytes at a character boundary", got, len(got), maxReportedBytes)
	}
}

func TestFormatErrors(t *testing.T) {
	row := "2024-06-01T12:00:00Z,55.5,1234.5,80,10.5,D\n"
	tests := []struct {
		name     string
		input    string
		wantRows int // valid rows read before the error
		wantLine int
		wantMsg  string
	}{
		{"stray quote", header + row + "2024-06-01T13:00:00Z,5\"5,1,80,1,D\n", 1, 3, "stray quote"},
		{"quote after leading space", header + "2024-06-01T13:00:00Z,55,1,80,1, \"D\"\n", 0, 2, "stray quote"},
		{"text after closing quote", header + "2024-06-01T13:00:00Z,55,1,80,1,\"D\"x\n", 0, 2, "after the closing quote"},
		{"space after closing quote", header + "2024-06-01T13:00:00Z,55,1,80,1,\"D\" \n", 0, 2, "after the closing quote"},
		{"unterminated quote", header + row + row + "2024-06-01T13:00:00Z,55,1,80,1,\"D\n\nmore\n", 2, 4, "never closed"},
		{"unterminated quote after a multi-line value", header + "2024-06-01T13:00:00Z,55,1,80,\"1\n\",\"D\n", 0, 3, "never closed"},
		{"unterminated quote after CR", header + "2024-06-01T13:00:00Z,55,1,80,1,\"D\r", 0, 2, "never closed"},
		{"unterminated quote in header", "timestamp,\"speed\n", 0, 1, "never closed"},
		{"lone CR in a row", header + "2024-06-01T13:00:00Z,55\r,1,80,1,D\n", 0, 2, "not followed by a line feed"},
		{"lone CR as line end", header + row + "2024-06-01T13:00:00Z,55,1,80,1,D\r2024-06-01T14:00:00Z,55,1,80,1,D\n", 1, 3, "not followed by a line feed"},
		{"CR CR LF", header + "2024-06-01T13:00:00Z,55,1,80,1,D\r\r\n", 0, 2, "not followed by a line feed"},
		{"lone CR at the end", header + "2024-06-01T13:00:00Z,55,1,80,1,D\r", 0, 2, "not followed by a line feed"},
		{"lone CR on a line of its own", header + row + "\r" + row, 1, 3, "not followed by a line feed"},
		{"lone CR after a closing quote", header + "2024-06-01T13:00:00Z,55,1,80,1,\"D\"\rx\n", 0, 2, "not followed by a line feed"},
		{"lone CR in the header", "timestamp\r,speed\n", 0, 1, "not followed by a line feed"},
		{"invalid UTF-8 in the header", "\n" + "timestamp,speed,odometer,soc,elevation,shift_\xff\n", 0, 2, "column 6 of the header is not valid UTF-8"},
		{"UTF-8 split across header cells", "timestamp,speed,odometer,soc,elevation,shift_state\xc3,\xa9\n", 0, 1, "column 6 of the header is not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readAll(t, tt.input, "veh1")
			var ferr *FormatError
			if !errors.As(err, &ferr) {
				t.Fatalf("error = %v (%T), want *FormatError", err, err)
			}
			if ferr.Line != tt.wantLine || !strings.Contains(ferr.Message, tt.wantMsg) {
				t.Errorf("error = %+v, want line %d and a message containing %q", ferr, tt.wantLine, tt.wantMsg)
			}
			if len(got) != tt.wantRows {
				t.Errorf("got %d results before the error, want %d valid rows", len(got), tt.wantRows)
			}
			for _, res := range got {
				if res.rowErr != nil {
					t.Errorf("unexpected row error %+v", res.rowErr)
				}
			}
		})
	}
}

func TestFormatErrorMessage(t *testing.T) {
	err := &FormatError{Line: 7, Message: "quoted value starting on this line is never closed"}
	if got, want := err.Error(), "malformed CSV on line 7: quoted value starting on this line is never closed"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// TestCells replaces one cell of the base row and checks the outcome.
func TestCells(t *testing.T) {
	tests := []struct {
		name    string
		col     int    // index into baseCells
		cell    string // as written in the file
		wantMsg string // "" for a valid row
		want    func(*Row)
	}{
		// timestamp
		{"timestamp offset", 0, "2024-06-01T14:00:00+02:00", "", nil},
		{"timestamp space and fraction", 0, "2024-06-01 12:00:00.1234567", "", func(r *Row) { r.Timestamp = r.Timestamp.Add(123456 * time.Microsecond) }},
		{"timestamp bare date", 0, "2024-06-01", "", func(r *Row) { r.Timestamp = r.Timestamp.Add(-12 * time.Hour) }},
		{"timestamp white space", 0, " \t2024-06-01T12:00:00Z ", "", nil},
		{"timestamp quoted", 0, `"2024-06-01T12:00:00Z"`, "", nil},
		{"timestamp empty", 0, "", "timestamp is required", nil},
		{"timestamp NULL", 0, " null ", "timestamp is required", nil},
		{"timestamp impossible", 0, "2022-02-30", "invalid timestamp: day out of range", nil},
		{"timestamp short offset", 0, "2024-06-01T12:00:00+02", "invalid timestamp: expected an offset as +hh:mm or -hh:mm", nil},
		{"timestamp space before offset", 0, "2024-06-01T12:00:00 +02:00", "invalid timestamp: unexpected space before the offset", nil},
		{"timestamp year 0", 0, "0000-01-01", "invalid timestamp: year out of range", nil},
		// speed
		{"speed NULL", 1, "NULL", "", func(r *Row) { r.Speed, r.SpeedValid = 0, false }},
		{"speed null lower case", 1, "null", "", func(r *Row) { r.Speed, r.SpeedValid = 0, false }},
		{"speed Null with spaces", 1, "  Null\t", "", func(r *Row) { r.Speed, r.SpeedValid = 0, false }},
		{"speed empty", 1, "", "", func(r *Row) { r.Speed, r.SpeedValid = 0, false }},
		{"speed quoted empty", 1, `""`, "", func(r *Row) { r.Speed, r.SpeedValid = 0, false }},
		{"speed blank", 1, "   ", "", func(r *Row) { r.Speed, r.SpeedValid = 0, false }},
		{"speed zero", 1, "0", "", func(r *Row) { r.Speed = 0 }},
		{"speed negative zero", 1, "-0", "", func(r *Row) { r.Speed = 0 }},
		{"speed negative zero fraction", 1, "-0.0e5", "", func(r *Row) { r.Speed = 0 }},
		{"speed exponent", 1, "1e2", "", func(r *Row) { r.Speed = 100 }},
		{"speed upper exponent with sign", 1, "1.5E+2", "", func(r *Row) { r.Speed = 150 }},
		{"speed negative exponent", 1, "15e-1", "", func(r *Row) { r.Speed = 1.5 }},
		{"speed underflow", 1, "1e-400", "", func(r *Row) { r.Speed = 0 }},
		{"speed white space", 1, " 12.5 ", "", func(r *Row) { r.Speed = 12.5 }},
		{"speed quoted with white space", 1, `" 12.5 "`, "", func(r *Row) { r.Speed = 12.5 }},
		{"speed negative", 1, "-1", "speed must be >= 0", nil},
		{"speed tiny negative", 1, "-1e-300", "speed must be >= 0", nil},
		{"speed plus", 1, "+5", "speed must be a number (such as 12.5 or 1e2)", nil},
		{"speed leading zero", 1, "05", "speed must be a number (such as 12.5 or 1e2)", nil},
		{"speed leading point", 1, ".5", "speed must be a number (such as 12.5 or 1e2)", nil},
		{"speed trailing point", 1, "5.", "speed must be a number (such as 12.5 or 1e2)", nil},
		{"speed hex", 1, "0x10", "speed must be a number (such as 12.5 or 1e2)", nil},
		{"speed comma decimal", 1, `"1,5"`, "speed must be a number (such as 12.5 or 1e2)", nil},
		{"speed NaN", 1, "NaN", "speed must be a number (such as 12.5 or 1e2)", nil},
		{"speed Infinity", 1, "Infinity", "speed must be a number (such as 12.5 or 1e2)", nil},
		{"speed inf", 1, "inf", "speed must be a number (such as 12.5 or 1e2)", nil},
		{"speed underscore", 1, "1_000", "speed must be a number (such as 12.5 or 1e2)", nil},
		{"speed bare exponent", 1, "1e", "speed must be a number (such as 12.5 or 1e2)", nil},
		{"speed exponent sign only", 1, "1e+", "speed must be a number (such as 12.5 or 1e2)", nil},
		{"speed minus only", 1, "-", "speed must be a number (such as 12.5 or 1e2)", nil},
		{"speed double minus", 1, "--1", "speed must be a number (such as 12.5 or 1e2)", nil},
		{"speed inner space", 1, "12 5", "speed must be a number (such as 12.5 or 1e2)", nil},
		{"speed no-break space", 1, "\u00a012", "speed must be a number (such as 12.5 or 1e2)", nil},
		{"speed unit", 1, "12km/h", "speed must be a number (such as 12.5 or 1e2)", nil},
		{"speed overflow", 1, "1e999", "speed must be a finite number", nil},
		// odometer
		{"odometer zero", 2, "0", "", func(r *Row) { r.Odometer = 0 }},
		{"odometer negative zero", 2, "-0", "", func(r *Row) { r.Odometer = 0 }},
		{"odometer large", 2, "1.7976931348623157e308", "", func(r *Row) { r.Odometer = math.MaxFloat64 }},
		{"odometer empty", 2, "", "odometer is required", nil},
		{"odometer NULL", 2, "NULL", "odometer is required", nil},
		{"odometer negative", 2, "-0.1", "odometer must be >= 0", nil},
		{"odometer overflow", 2, "1.8e308", "odometer must be a finite number", nil},
		{"odometer syntax", 2, "1.2.3", "odometer must be a number (such as 12.5 or 1e2)", nil},
		// soc
		{"soc zero", 3, "0", "", func(r *Row) { r.SOC = 0 }},
		{"soc 100", 3, "100", "", func(r *Row) { r.SOC = 100 }},
		{"soc float integral", 3, "58.0", "", func(r *Row) { r.SOC = 58 }},
		{"soc exponent", 3, "1e2", "", func(r *Row) { r.SOC = 100 }},
		{"soc negative zero", 3, "-0", "", func(r *Row) { r.SOC = 0 }},
		{"soc white space", 3, " 58 ", "", func(r *Row) { r.SOC = 58 }},
		{"soc fraction", 3, "58.5", "soc must be an integer between 0 and 100", nil},
		{"soc above", 3, "101", "soc must be an integer between 0 and 100", nil},
		{"soc below", 3, "-1", "soc must be an integer between 0 and 100", nil},
		{"soc huge", 3, "1e300", "soc must be an integer between 0 and 100", nil},
		{"soc overflow", 3, "1e999", "soc must be an integer between 0 and 100", nil},
		{"soc syntax", 3, "58%", "soc must be a number (such as 12.5 or 1e2)", nil},
		{"soc empty", 3, "", "soc is required", nil},
		{"soc NULL", 3, "NULL", "soc is required", nil},
		// elevation
		{"elevation negative", 4, "-12.5", "", func(r *Row) { r.Elevation = -12.5 }},
		{"elevation negative zero", 4, "-0", "", func(r *Row) { r.Elevation = 0 }},
		{"elevation empty", 4, "", "elevation is required", nil},
		{"elevation NULL", 4, "nUlL", "elevation is required", nil},
		{"elevation overflow", 4, "-1e999", "elevation must be a finite number", nil},
		{"elevation syntax", 4, "-Infinity", "elevation must be a number (such as 12.5 or 1e2)", nil},
		// shift_state
		{"shift_state NULL", 5, "NULL", "", func(r *Row) { r.ShiftState, r.ShiftStateValid = "", false }},
		{"shift_state null", 5, "null", "", func(r *Row) { r.ShiftState, r.ShiftStateValid = "", false }},
		{"shift_state NULL with spaces", 5, " NULL ", "", func(r *Row) { r.ShiftState, r.ShiftStateValid = "", false }},
		{"shift_state empty", 5, "", "", func(r *Row) { r.ShiftState, r.ShiftStateValid = "", false }},
		{"shift_state blank", 5, "  ", "", func(r *Row) { r.ShiftState, r.ShiftStateValid = "", false }},
		{"shift_state verbatim", 5, " D ", "", func(r *Row) { r.ShiftState = " D " }},
		{"shift_state lower case", 5, "p", "", func(r *Row) { r.ShiftState = "p" }},
		{"shift_state quoted comma", 5, `"D,R"`, "", func(r *Row) { r.ShiftState = "D,R" }},
		{"shift_state quoted quote", 5, `"say ""D"""`, "", func(r *Row) { r.ShiftState = `say "D"` }},
		{"shift_state quoted LF", 5, "\"a\nb\"", "", func(r *Row) { r.ShiftState = "a\nb" }},
		{"shift_state quoted CRLF", 5, "\"a\r\nb\"", "", func(r *Row) { r.ShiftState = "a\nb" }},
		{"shift_state quoted lone CR", 5, "\"a\rb\"", "", func(r *Row) { r.ShiftState = "a\rb" }},
		{"shift_state 20 characters", 5, strings.Repeat("ä", 20), "", func(r *Row) { r.ShiftState = strings.Repeat("ä", 20) }},
		{"shift_state 21 characters", 5, strings.Repeat("D", 21), "shift_state must be at most 20 characters", nil},
		{"shift_state NUL", 5, "D\x00", "shift_state contains a NUL character", nil},
		{"shift_state invalid UTF-8", 5, "D\xff", "shift_state is not valid UTF-8", nil},
		{"speed NUL", 1, "5\x00", "speed contains a NUL character", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cells := append([]string(nil), baseCells...)
			cells[tt.col] = tt.cell
			input := header + strings.Join(cells, ",") + "\n"
			got, err := readAll(t, input, "veh1")
			if err != nil {
				t.Fatalf("reading %q: %v", input, err)
			}
			if len(got) != 1 {
				t.Fatalf("got %d results, want 1", len(got))
			}
			if tt.wantMsg != "" {
				checkRowError(t, got[0].rowErr, 2, strings.Split(header[:len(header)-1], ",")[tt.col], tt.wantMsg)
				return
			}
			if got[0].rowErr != nil {
				t.Fatalf("row error %+v, want a valid row", got[0].rowErr)
			}
			want := baseRow()
			if tt.want != nil {
				tt.want(&want)
			}
			checkRow(t, got[0].row, want)
		})
	}
}

func checkRowError(t *testing.T, got *RowError, line int, column, msg string) {
	t.Helper()
	if got == nil {
		t.Fatalf("no row error, want %q on line %d", msg, line)
	}
	gotCol := "<nil>"
	if got.Column != nil {
		gotCol = *got.Column
	}
	if got.Line != line || gotCol != column || got.Message != msg {
		t.Errorf("row error = line %d, column %s, message %q; want line %d, column %s, message %q",
			got.Line, gotCol, got.Message, line, column, msg)
	}
}

func TestRowErrors(t *testing.T) {
	nilCol := "<nil>"
	tests := []struct {
		name      string
		input     string
		vehicleID string
		line      int
		column    string
		msg       string
		value     string
	}{
		{"too few cells", header + "2024-06-01,1,2,3,4\n", "veh1", 2, nilCol, "row has 5 cells, the header has 6", ""},
		{"too many cells", header + "2024-06-01,1,2,3,4,D,x\n", "veh1", 2, nilCol, "row has 7 cells, the header has 6", ""},
		{"far too many cells", header + "2024-06-01,1,2,3,4,D" + strings.Repeat(",", 100) + "\n", "veh1", 2, nilCol, "row has 106 cells, the header has 6", ""},
		{"single cell", header + "x\n", "veh1", 2, nilCol, "row has 1 cells, the header has 6", ""},
		{"blank-looking line", header + " \n", "veh1", 2, nilCol, "row has 1 cells, the header has 6", ""},
		{"cell count before NUL", header + "2024-06-01,1,2,3,\x00\n", "veh1", 2, nilCol, "row has 5 cells, the header has 6", ""},
		{"first problem in header order", "shift_state,soc,speed,odometer,elevation,timestamp\n" + "D,101,-1,x,1,bad\n", "veh1", 2, "soc", "soc must be an integer between 0 and 100", "101"},
		{"first problem is the timestamp", header + "bad,-1,1,1,1,D\n", "veh1", 2, "timestamp", "invalid timestamp: expected a date as YYYY-MM-DD", "bad"},
		{"value is raw", header + "2024-06-01,\" -1 \",1,1,1,D\n", "veh1", 2, "speed", "speed must be >= 0", " -1 "},
		{"NUL in id", "id,timestamp,speed,odometer,soc,elevation,shift_state\n" + "1\x00,2024-06-01,1,1,1,1,D\n", "veh1", 2, "id", "id contains a NUL character", "1\uFFFD"},
		{"invalid UTF-8 in id", "id,timestamp,speed,odometer,soc,elevation,shift_state\n" + "\xc3,2024-06-01,1,1,1,1,D\n", "veh1", 2, "id", "id is not valid UTF-8", "\uFFFD"},
		{"UTF-8 split across cells", header + "2024-06-01,1,2,3,4\xc3,\xa9\n", "veh1", 2, "elevation", "elevation is not valid UTF-8", "4\uFFFD"},
		{"vehicle_id differs", "vehicle_id," + header + "veh2,2024-06-01,1,1,1,1,D\n", "veh1", 2, "vehicle_id", `vehicle_id must equal the upload's vehicle_id "veh1"`, "veh2"},
		{"vehicle_id verbatim", "vehicle_id," + header + " veh1,2024-06-01,1,1,1,1,D\n", "veh1", 2, "vehicle_id", `vehicle_id must equal the upload's vehicle_id "veh1"`, " veh1"},
		{"vehicle_id case", "vehicle_id," + header + "VEH1,2024-06-01,1,1,1,1,D\n", "veh1", 2, "vehicle_id", `vehicle_id must equal the upload's vehicle_id "veh1"`, "VEH1"},
		{"vehicle_id empty", "vehicle_id," + header + ",2024-06-01,1,1,1,1,D\n", "veh1", 2, "vehicle_id", "vehicle_id is required", ""},
		{"vehicle_id NULL", "vehicle_id," + header + "NULL,2024-06-01,1,1,1,1,D\n", "veh1", 2, "vehicle_id", "vehicle_id is required", "NULL"},
		{"vehicle_id NULL with spaces", "vehicle_id," + header + " null ,2024-06-01,1,1,1,1,D\n", "veh1", 2, "vehicle_id", "vehicle_id is required", " null "},
		{"vehicle_id NUL", "vehicle_id," + header + "veh1\x00,2024-06-01,1,1,1,1,D\n", "veh1", 2, "vehicle_id", "vehicle_id contains a NUL character", "veh1\uFFFD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readAll(t, tt.input, tt.vehicleID)
			if err != nil {
				t.Fatalf("reading: %v", err)
			}
			if len(got) != 1 {
				t.Fatalf("got %d results, want 1", len(got))
			}
			checkRowError(t, got[0].rowErr, tt.line, tt.column, tt.msg)
			if got[0].rowErr != nil && got[0].rowErr.Value != tt.value {
				t.Errorf("Value = %q, want %q", got[0].rowErr.Value, tt.value)
			}
		})
	}
}

func TestRowErrorValueShortened(t *testing.T) {
	long := strings.Repeat("é", 150) + "\xff" // 301 bytes, invalid UTF-8 past the cut
	got, err := readAll(t, header+"2024-06-01,1,2,3,4,"+long+"\n", "veh1")
	if err != nil || len(got) != 1 || got[0].rowErr == nil {
		t.Fatalf("got %+v, %v; want one row error", got, err)
	}
	if v, want := got[0].rowErr.Value, strings.Repeat("é", 100)+"…"; v != want {
		t.Errorf("Value = %q, want %q", v, want)
	}

	// A cut in the middle of a character backs off to its start.
	odd := "x" + strings.Repeat("é", 150)
	got, _ = readAll(t, header+"2024-06-01,1,2,3,4,"+odd+"\n", "veh1")
	if v, want := got[0].rowErr.Value, "x"+strings.Repeat("é", 99)+"…"; v != want {
		t.Errorf("Value = %q, want %q", v, want)
	}
}

func TestVehicleIDAndIDColumns(t *testing.T) {
	input := "id,vehicle_id,timestamp,speed,odometer,soc,elevation,shift_state\n" +
		"17,veh 1,2024-06-01T12:00:00Z,55.5,1234.5,80,10.5,D\n" +
		",veh 1,2024-06-01T12:00:00Z,55.5,1234.5,80,10.5,D\n" +
		"anything,\"veh 1\",2024-06-01T12:00:00Z,55.5,1234.5,80,10.5,D\n"
	got, err := readAll(t, input, "veh 1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("got %d results, want 3", len(got))
	}
	for i, res := range got {
		if res.rowErr != nil {
			t.Fatalf("row %d: %+v", i, res.rowErr)
		}
		want := baseRow()
		want.Line = i + 2
		checkRow(t, res.row, want)
	}
}

func TestLineNumbers(t *testing.T) {
	row := "2024-06-01T12:00:00Z,55.5,1234.5,80,10.5,D"
	input := "\xEF\xBB\xBF" + // BOM, ignored
		"\n" + // 1: blank
		"timestamp,speed,odometer,soc,elevation,shift_state\r\n" + // 2: header
		row + "\r\n" + // 3
		"\n" + // 4: blank
		"\r\n" + // 5: blank
		row + ",\"multi\r\nline\"\n" + // 6-7: one record over two lines, one cell too many
		"2024-06-01T12:00:00Z,55.5,1234.5,80,10.5,\"x\n\n\ny\"\n" + // 8-11
		"bad," + "\"a\nb\",1,2,3,4\n" + // 12-13: invalid
		row // 14, no line end
	got, err := readAll(t, input, "veh1")
	if err != nil {
		t.Fatal(err)
	}
	wantLines := []int{3, 6, 8, 12, 14}
	if len(got) != len(wantLines) {
		t.Fatalf("got %d results, want %d", len(got), len(wantLines))
	}
	for i, res := range got {
		line := res.row.Line
		if res.rowErr != nil {
			line = res.rowErr.Line
		}
		if line != wantLines[i] {
			t.Errorf("result %d on line %d, want %d", i, line, wantLines[i])
		}
	}
	if got[1].rowErr == nil || got[1].rowErr.Column != nil {
		t.Errorf("result on line 6 = %+v, want a cell count error", got[1].rowErr)
	}
	if got[2].row.ShiftState != "x\n\n\ny" {
		t.Errorf("shift_state on line 8 = %q, want %q", got[2].row.ShiftState, "x\n\n\ny")
	}
	checkRowError(t, got[3].rowErr, 12, "timestamp", "invalid timestamp: expected a date as YYYY-MM-DD")
}

// TestBOMOnlyAtStart: a BOM elsewhere is data, here making an unknown column.
func TestBOMOnlyAtStart(t *testing.T) {
	_, err := readAll(t, "\n\xEF\xBB\xBF"+header, "veh1")
	var herr *HeaderError
	if !errors.As(err, &herr) || len(herr.Unknown) != 1 || herr.Unknown[0] != "\uFEFFtimestamp" {
		t.Errorf("error = %v, want unknown column \\uFEFFtimestamp", err)
	}
}

// TestEncodingCSVRoundTrip reads what encoding/csv writes, with awkward values.
func TestEncodingCSVRoundTrip(t *testing.T) {
	values := []string{"D", "", "a,b", `"`, `say "hi"`, "line\nbreak", "crlf\r\nbreak", " padded ", "ü", "\"\"", ",", "\n"}
	for _, useCRLF := range []bool{false, true} {
		var buf bytes.Buffer
		w := csv.NewWriter(&buf)
		w.UseCRLF = useCRLF
		_ = w.Write([]string{"shift_state", "timestamp", "speed", "odometer", "soc", "elevation"})
		for _, v := range values {
			_ = w.Write([]string{v, "2024-06-01T12:00:00Z", "1", "2", "3", "4"})
		}
		w.Flush()
		got, err := readAll(t, buf.String(), "veh1")
		if err != nil {
			t.Fatalf("UseCRLF=%v: %v", useCRLF, err)
		}
		if len(got) != len(values) {
			t.Fatalf("UseCRLF=%v: got %d results, want %d", useCRLF, len(got), len(values))
		}
		for i, v := range values {
			want := strings.ReplaceAll(v, "\r\n", "\n")
			if useCRLF { // the writer turns a LF in a value into CRLF, which reads back as LF
				want = strings.ReplaceAll(want, "\r", "")
			}
			isNull := strings.TrimSpace(want) == ""
			if res := got[i]; res.rowErr != nil || res.row.ShiftState != want && !isNull || res.row.ShiftStateValid == isNull {
				t.Errorf("UseCRLF=%v: value %q read as %+v", useCRLF, v, res)
			}
		}
	}
}

func TestSampleFile(t *testing.T) {
	data, err := os.ReadFile("testdata/sample.csv")
	if err != nil {
		t.Fatal(err)
	}
	got, err := readAll(t, string(data), "veh1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 18 {
		t.Fatalf("got %d results, want 18", len(got))
	}
	for _, res := range got {
		if res.rowErr != nil {
			t.Errorf("row error %+v", res.rowErr)
		}
	}
	checkRow(t, got[0].row, Row{
		Line:      2,
		Timestamp: time.Date(2022, 7, 12, 16, 42, 25, 435e6, time.UTC),
		Odometer:  40800.6,
		SOC:       58,
		Elevation: 92,
	})
	checkRow(t, got[7].row, Row{
		Line:            9,
		Timestamp:       time.Date(2022, 7, 12, 16, 41, 0, 966e6, time.UTC),
		Speed:           37,
		SpeedValid:      true,
		Odometer:        47676.2,
		SOC:             73,
		Elevation:       4,
		ShiftState:      "D",
		ShiftStateValid: true,
	})
}

// repeatReader yields a header then the same row forever.
type repeatReader struct {
	header, row []byte
	off         int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(r.header) > 0 {
			c := copy(p[n:], r.header)
			r.header, n = r.header[c:], n+c
			continue
		}
		c := copy(p[n:], r.row[r.off:])
		n += c
		r.off = (r.off + c) % len(r.row)
	}
	return n, nil
}

func TestNoAllocationsPerRow(t *testing.T) {
	for _, row := range []string{
		"2022-07-12 16:42:25.435,NULL,40800.6,58,92,NULL\n",
		"2022-07-12T16:41:00.966+02:00,37,47676.2,73,-4.5,D\r\n",
		"\"2022-07-12 16:41:00\",\" 3.7e1 \",1,1e2,0,\"P\"\n",
	} {
		r := NewReader(&repeatReader{header: []byte(header), row: []byte(row)}, "veh1")
		if err := r.ReadHeader(); err != nil {
			t.Fatal(err)
		}
		// Warm up: let the record buffers reach their size.
		for range 10 {
			_, _, _ = r.Next()
		}
		var failed bool
		n := testing.AllocsPerRun(1000, func() {
			_, rowErr, err := r.Next()
			failed = failed || err != nil || rowErr != nil
		})
		if failed {
			t.Fatalf("row %q did not read as a valid row", row)
		}
		if n != 0 {
			t.Errorf("Next allocates %v times per row for %q, want 0", n, row)
		}
	}
}

func TestHeaderErrorMessageIsBounded(t *testing.T) {
	var names []string
	for i := range 500 {
		names = append(names, strings.Repeat("x", 100)+strconv.Itoa(i))
	}
	msg := (&HeaderError{Unknown: names, Missing: []string{"soc"}}).Error()
	if len(msg) > 4000 || !strings.Contains(msg, "and 480 more") || !strings.Contains(msg, "missing column(s): soc") {
		t.Errorf("message of %d bytes: %.300s", len(msg), msg)
	}
}
