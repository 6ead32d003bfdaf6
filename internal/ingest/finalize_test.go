package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/metrics"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vehicle-data/vehicle-data/gen/db"
	"github.com/vehicle-data/vehicle-data/internal/apperr"
	"github.com/vehicle-data/vehicle-data/internal/csvrows"
	"github.com/vehicle-data/vehicle-data/internal/database"
	"github.com/vehicle-data/vehicle-data/internal/ingest"
	"github.com/vehicle-data/vehicle-data/internal/testdb"
)

func TestFinalizeRequestErrors(t *testing.T) {
	svc, pool := newService(t, ingest.Options{})
	upload(t, svc, "veh1", "f.csv", []byte(realHeader), 1<<20)
	tests := []struct {
		name     string
		req      ingest.FinalizeRequest
		wantKind apperr.Kind
		wantIn   []string
	}{
		{"unknown file", ingest.FinalizeRequest{VehicleID: "veh1", FileName: "g.csv", Total: 1}, apperr.KindNotFound, []string{`"g.csv"`}},
		{"other vehicle", ingest.FinalizeRequest{VehicleID: "veh2", FileName: "f.csv", Total: 1}, apperr.KindNotFound, []string{`"veh2"`}},
		{"total differs", ingest.FinalizeRequest{VehicleID: "veh1", FileName: "f.csv", Total: 2}, apperr.KindConflict, []string{"total_chunks is 2", "total_chunks 1"}},
		{"zero total", ingest.FinalizeRequest{VehicleID: "veh1", FileName: "f.csv", Total: 0}, apperr.KindInvalid, []string{"total_chunks"}},
		{"no vehicle", ingest.FinalizeRequest{FileName: "f.csv", Total: 1}, apperr.KindInvalid, []string{"vehicle_id"}},
		{"long file name", ingest.FinalizeRequest{VehicleID: "veh1", FileName: strings.Repeat("f", 256), Total: 1}, apperr.KindInvalid, []string{"file_name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := svc.Finalize(t.Context(), tt.req)
			wantKind(t, err, tt.wantKind, tt.wantIn...)
		})
	}
	wantChunksKept(t, svc, "veh1", "f.csv", 1)
	wantNothingInserted(t, pool)
}

func TestFinalizeMissingChunks(t *testing.T) {
	svc, pool := newService(t, ingest.Options{})
	file := genCSV(100, 1)
	chunks := split(file, len(file)/4+1) // 4 chunks
	put := func(i int) {
		t.Helper()
		meta := ingest.ChunkMeta{VehicleID: "veh1", FileName: "f.csv", Index: i, Total: len(chunks)}
		if _, err := svc.PutChunk(t.Context(), meta, chunks[i]); err != nil {
			t.Fatalf("PutChunk(%d): %v", i, err)
		}
	}
	put(0)
	put(2)
	req := ingest.FinalizeRequest{VehicleID: "veh1", FileName: "f.csv", Total: 4}
	_, err := svc.Finalize(t.Context(), req)
	var mce *ingest.MissingChunksError
	if !errors.As(err, &mce) {
		t.Fatalf("Finalize = %v (%T), want *MissingChunksError", err, err)
	}
	if mce.Total != 4 || !slices.Equal(mce.Missing, []int{1, 3}) {
		t.Errorf("missing chunks = %+v, want total 4, missing [1 3]", mce)
	}
	wantNothingInserted(t, pool)

	// Nothing was lost: send the rest and finalize again.
	put(3)
	put(1)
	res, err := svc.Finalize(t.Context(), req)
	if err != nil {
		t.Fatalf("Finalize after sending the missing chunks: %v", err)
	}
	if res.RowsInserted != 100 {
		t.Errorf("rows inserted = %d, want 100", res.RowsInserted)
	}
}

func TestFinalizeFileErrors(t *testing.T) {
	svc, pool := newService(t, ingest.Options{})
	const row = "2022-07-12 16:41:00,1,2,3,4,D\n"
	tests := []struct {
		name        string
		file        string
		skipInvalid bool
		wantIn      []string
	}{
		{"missing column", "timestamp,speed,odometer,soc,elevation\n2022-07-12 16:41:00,1,2,3,4\n", false, []string{"missing column(s): shift_state"}},
		{"unknown column", "timestamp,speed,odometer,soc,elevation,shift_state,colour\n", false, []string{"unknown column(s): colour"}},
		{"column twice", "timestamp,speed,odometer,soc,elevation,shift_state,soc\n", false, []string{"duplicate column(s): soc"}},
		{"empty file", "", false, []string{"missing column(s): timestamp, speed, odometer, soc, elevation, shift_state"}},
		{"blank lines only", "\n\r\n\n", false, []string{"missing column(s): timestamp"}},
		{"header not UTF-8", "timestamp,speed,odometer,soc,elevation,shift_\xff\n", false, []string{"line 1", "UTF-8"}},
		{"stray quote", realHeader + row + "2022-07-12 16:41:01,1,2,3,4,D\"x\n", false, []string{"malformed CSV on line 3"}},
		{"stray quote, skip_invalid_rows", realHeader + row + "2022-07-12 16:41:01,1,2,3,4,D\"x\n", true, []string{"malformed CSV on line 3"}},
		{"unterminated quote", realHeader + row + row + "2022-07-12 16:41:01,1,2,3,4,\"D\n", false, []string{"malformed CSV on line 4"}},
		{"lone CR", realHeader + "2022-07-12 16:41:01,1,2,3,4,D\rx\n", true, []string{"malformed CSV on line 2"}},
		{"header over the record size", "\n" + strings.Repeat(" ", csvrows.MaxRecordSize) + realHeader + row, true, []string{"line 2", "header is longer than 1 MiB"}},
		{"unterminated quote in an oversized row", realHeader + row + "2022-07-12 16:41:01,1,2,3,4,\"" + strings.Repeat("D\n", csvrows.MaxRecordSize), true, []string{"malformed CSV on line 3"}},
		// An invalid row ends the COPY early; the rest is still read, and a malformed file is
		// still a malformed file, not a 422.
		{"malformed after an invalid row", realHeader + "2022-07-12 16:41:00,1,2,300,4,D\n" + row + "x,\"y\"z\n", false, []string{"malformed CSV on line 4"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := fmt.Sprintf("file%d.csv", i)
			size := 7 // chunk boundaries everywhere
			if len(tt.file) > 1<<16 {
				size = 100_003 // within ingest.MaxTotalChunks
			}
			total := upload(t, svc, "veh1", name, []byte(tt.file), size)
			_, err := svc.Finalize(t.Context(), ingest.FinalizeRequest{VehicleID: "veh1", FileName: name, Total: total, SkipInvalid: tt.skipInvalid})
			wantKind(t, err, apperr.KindInvalid, tt.wantIn...)
			wantChunksKept(t, svc, "veh1", name, total)
			wantNothingInserted(t, pool)
		})
	}
}

func TestFinalizeInvalidRows(t *testing.T) {
	svc, pool := newService(t, ingest.Options{})
	file := realHeader + // line 1
		"2022-07-12 16:41:00,10,100.5,80,4,D\n" + // 2: valid
		"2022-07-12 16:41:01,10,100.5,101,4,D\n" + // 3: soc out of range
		"\n" + // 4: blank, still counted
		"2022-07-12 16:41:02,10,100.5,80\n" + // 5: too few cells
		"\"2022-07-12 16:41:03\",-1,100.5,80,4,\"D\"\n" + // 6: negative speed
		"\"2022-07-12\n16:41:04\",1,1,1,1,D\n" + // 7-8: one record over two lines, bad timestamp
		"2022-07-12 16:41:05,NULL,100.6,79,-3.5,\n" // 9: valid, nulls
	total := upload(t, svc, "veh1", "f.csv", []byte(file), 16)
	wantErrs := []struct {
		line   int
		column *string
		value  string
	}{
		{3, ptr("soc"), "101"},
		{5, nil, ""},
		{6, ptr("speed"), "-1"},
		{7, ptr("timestamp"), "2022-07-12\n16:41:04"},
	}
	checkErrors := func(t *testing.T, got []csvrows.RowError) {
		t.Helper()
		if len(got) != len(wantErrs) {
			t.Fatalf("errors = %+v, want %d of them", got, len(wantErrs))
		}
		for i, w := range wantErrs {
			g := got[i]
			if g.Line != w.line || (g.Column == nil) != (w.column == nil) || (g.Column != nil && *g.Column != *w.column) || g.Value != w.value || g.Message == "" {
				t.Errorf("error %d = line %d column %v value %q message %q; want line %d column %v value %q and a message",
					i, g.Line, deref(g.Column), g.Value, g.Message, w.line, deref(w.column), w.value)
			}
		}
	}

	_, err := svc.Finalize(t.Context(), ingest.FinalizeRequest{VehicleID: "veh1", FileName: "f.csv", Total: total})
	var rie *ingest.RowsInvalidError
	if !errors.As(err, &rie) {
		t.Fatalf("Finalize = %v (%T), want *RowsInvalidError", err, err)
	}
	if rie.Invalid != 4 {
		t.Errorf("invalid = %d, want 4", rie.Invalid)
	}
	checkErrors(t, rie.Errors)
	wantNothingInserted(t, pool)
	wantChunksKept(t, svc, "veh1", "f.csv", total)

	res := finalize(t, svc, "veh1", "f.csv", total, true)
	if res.RowsReceived != 6 || res.RowsInserted != 2 || res.RowsDuplicate != 0 || res.RowsInvalid != 4 {
		t.Errorf("result = %+v, want 6 received, 2 inserted, 0 duplicate, 4 invalid", res)
	}
	checkErrors(t, res.Errors)
	want := []storedRow{
		{"2022-07-12T16:41:00.000000Z", "10", 100.5, 80, 4, "D"},
		{"2022-07-12T16:41:05.000000Z", "null", 100.6, 79, -3.5, "null"},
	}
	if got := storedRows(t, pool, "veh1"); !slices.Equal(got, want) {
		t.Errorf("stored %+v, want %+v", got, want)
	}
}

// TestFinalizeOversizedRow: a row over csvrows.MaxRecordSize is an invalid row like any
// other, whatever the chunks cut it into, and the rows after it keep their line numbers.
func TestFinalizeOversizedRow(t *testing.T) {
	svc, pool := newService(t, ingest.Options{})
	lines := csvrows.MaxRecordSize / 4
	value := strings.Repeat("x,\r\n", lines) // quoted: commas and line ends
	file := realHeader +                     // line 1
		"2022-07-12 16:41:00,1,2,3,4,D\r\n" + // 2: valid
		"2022-07-12 16:41:01,1,2,3,4,\"" + value + "\"\r\n" + // 3 to 3+lines: too long
		"2022-07-12 16:41:02,1,2,300,4,D\r\n" + // 4+lines: soc out of range
		"2022-07-12 16:41:03,1,2,3,4,D" // 5+lines: valid, no line end
	total := upload(t, svc, "veh1", "f.csv", []byte(file), 100_003)
	wantErrs := func(t *testing.T, got []csvrows.RowError) {
		t.Helper()
		if len(got) != 2 || got[0].Line != 3 || got[0].Column != nil || got[0].Value != "" || !strings.Contains(got[0].Message, "longer than 1 MiB") ||
			got[1].Line != 4+lines || deref(got[1].Column) != "soc" {
			t.Errorf("errors = %+v, want line 3 (too long, no column or value) and line %d (soc)", got, 4+lines)
		}
	}

	_, err := svc.Finalize(t.Context(), ingest.FinalizeRequest{VehicleID: "veh1", FileName: "f.csv", Total: total})
	var rie *ingest.RowsInvalidError
	if !errors.As(err, &rie) || rie.Invalid != 2 {
		t.Fatalf("Finalize = %v (%T), want *RowsInvalidError of two rows", err, err)
	}
	wantErrs(t, rie.Errors)
	wantNothingInserted(t, pool)

	res := finalize(t, svc, "veh1", "f.csv", total, true)
	if res.RowsReceived != 4 || res.RowsInserted != 2 || res.RowsInvalid != 2 {
		t.Errorf("result = %+v, want 4 received, 2 inserted, 2 invalid", res)
	}
	wantErrs(t, res.Errors)
	if got := storedRows(t, pool, "veh1"); len(got) != 2 || got[1].Timestamp != "2022-07-12T16:41:03.000000Z" {
		t.Errorf("stored %+v, want the rows of lines 2 and %d", got, 5+lines)
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func TestFinalizeManyInvalidRows(t *testing.T) {
	svc, pool := newService(t, ingest.Options{})
	// 50 valid rows, then 3 invalid rows after each valid one: 150 invalid in all.
	var b strings.Builder
	b.WriteString(realHeader)
	ts := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var wantLines []int
	line := 1
	for i := range 50 {
		fmt.Fprintf(&b, "%s,1,2,3,4,D\n", ts.Add(time.Duration(i)*time.Second).Format(time.RFC3339))
		line++
		for range 3 {
			b.WriteString("not a time,1,2,3,4,D\n")
			line++
			wantLines = append(wantLines, line)
		}
	}
	total := upload(t, svc, "veh1", "f.csv", []byte(b.String()), 1000)

	_, err := svc.Finalize(t.Context(), ingest.FinalizeRequest{VehicleID: "veh1", FileName: "f.csv", Total: total})
	var rie *ingest.RowsInvalidError
	if !errors.As(err, &rie) {
		t.Fatalf("Finalize = %v (%T), want *RowsInvalidError", err, err)
	}
	lines := func(errs []csvrows.RowError) []int {
		var out []int
		for _, e := range errs {
			out = append(out, e.Line)
		}
		return out
	}
	if rie.Invalid != 150 || !slices.Equal(lines(rie.Errors), wantLines[:ingest.MaxReportedErrors]) {
		t.Errorf("invalid = %d, lines %v; want 150, the first 100 in file order %v", rie.Invalid, lines(rie.Errors), wantLines[:100])
	}
	wantNothingInserted(t, pool)

	res := finalize(t, svc, "veh1", "f.csv", total, true)
	if res.RowsReceived != 200 || res.RowsInserted != 50 || res.RowsInvalid != 150 || !slices.Equal(lines(res.Errors), wantLines[:100]) {
		t.Errorf("result = %d received, %d inserted, %d invalid, lines %v; want 200, 50, 150, the first 100",
			res.RowsReceived, res.RowsInserted, res.RowsInvalid, lines(res.Errors))
	}
}

func TestFinalizeDuplicates(t *testing.T) {
	svc, pool := newService(t, ingest.Options{})
	_, err := db.New().CreateVehicleData(t.Context(), pool, db.CreateVehicleDataParams{
		VehicleID: "veh1", Timestamp: time.Date(2022, 7, 12, 16, 41, 0, 0, time.UTC),
		Speed: ptr(5.0), Odometer: 9, Soc: 40, Elevation: 1, ShiftState: ptr("P"),
	})
	if err != nil {
		t.Fatalf("store a record: %v", err)
	}
	file := realHeader +
		"2022-07-12 16:41:00,1,10,50,0,D\n" + // 2: stored already
		"2022-07-12 16:41:01,1,10,50,0,D\n" + // 3: inserted
		"2022-07-12T18:41:01+02:00,2,10,50,0,R\n" + // 4: the same instant as line 3
		"2022-07-12 16:41:02,1,10,101,0,D\n" + // 5: invalid
		"2022-07-12 16:41:02,3,10,50,0,N\n" + // 6: inserted: an invalid row never makes a duplicate
		"2022-07-12 16:41:01.000,4,10,50,0,P\n" // 7: the same instant as line 3
	total := upload(t, svc, "veh1", "f.csv", []byte(file), 20)
	// The same timestamps under another vehicle are no duplicates.
	total2 := upload(t, svc, "veh2", "f.csv", []byte(file), 1<<20)

	res := finalize(t, svc, "veh1", "f.csv", total, true)
	if res.RowsReceived != 6 || res.RowsInserted != 2 || res.RowsDuplicate != 3 || res.RowsInvalid != 1 {
		t.Errorf("result = %+v, want 6 received, 2 inserted, 3 duplicate, 1 invalid", res)
	}
	want := []storedRow{
		{"2022-07-12T16:41:00.000000Z", "5", 9, 40, 1, "P"},  // the stored row is untouched
		{"2022-07-12T16:41:01.000000Z", "1", 10, 50, 0, "D"}, // the first of lines 3, 4 and 7
		{"2022-07-12T16:41:02.000000Z", "3", 10, 50, 0, "N"},
	}
	if got := storedRows(t, pool, "veh1"); !slices.Equal(got, want) {
		t.Errorf("stored %+v, want %+v", got, want)
	}

	res2 := finalize(t, svc, "veh2", "f.csv", total2, true)
	if res2.RowsInserted != 3 || res2.RowsDuplicate != 2 {
		t.Errorf("veh2: result = %+v, want 3 inserted, 2 duplicate", res2)
	}

	// The per-vehicle figures follow the inserts.
	vehicles, err := db.New().ListVehicles(t.Context(), pool)
	if err != nil {
		t.Fatalf("ListVehicles: %v", err)
	}
	first, last := time.Date(2022, 7, 12, 16, 41, 0, 0, time.UTC), time.Date(2022, 7, 12, 16, 41, 2, 0, time.UTC)
	wantVehicles := []db.ListVehiclesRow{
		{VehicleID: "veh1", RecordCount: 3, FirstTimestamp: first, LastTimestamp: last},
		{VehicleID: "veh2", RecordCount: 3, FirstTimestamp: first, LastTimestamp: last},
	}
	if len(vehicles) != len(wantVehicles) {
		t.Fatalf("vehicles = %+v, want %+v", vehicles, wantVehicles)
	}
	for i, v := range vehicles {
		w := wantVehicles[i]
		if v.VehicleID != w.VehicleID || v.RecordCount != w.RecordCount || !v.FirstTimestamp.Equal(w.FirstTimestamp) || !v.LastTimestamp.Equal(w.LastTimestamp) {
			t.Errorf("vehicle %d = %+v, want %+v", i, v, w)
		}
	}
}

// exportLayout is a file as the CSV export writes it, plus what the reader must tolerate:
// a BOM, CRLF line ends, a blank line, quoted names and cells, an escaped quote, a CRLF inside
// quotes (stored as LF), spaces around numbers, and no line end after the last record.
func exportLayout(vehicleID string) string {
	return "\uFEFFid,vehicle_id,\"timestamp\",speed,odometer,soc,elevation,shift_state\r\n" +
		"1," + vehicleID + ",2022-07-12 16:41:00.966,37,47676.2,73,4,D\r\n" +
		"2,\"" + vehicleID + "\",\"2022-07-12T16:41:01.5Z\", 38 ,47676.3,73,4,\"R,1\"\r\n" +
		"\r\n" +
		"3," + vehicleID + ",2022-07-12 16:41:02,NULL,47676.4,72,-4.25,\"P\"\"x\"\r\n" +
		"4," + vehicleID + ",2022-07-12 16:41:03,0,47676.4,72,1e2,\"N\r\nq\"\r\n" +
		"5," + vehicleID + ",2022-07-12 18:41:04+02:00,,47676.5,58.0,0,"
}

var exportLayoutRows = []storedRow{
	{"2022-07-12T16:41:00.966000Z", "37", 47676.2, 73, 4, "D"},
	{"2022-07-12T16:41:01.500000Z", "38", 47676.3, 73, 4, "R,1"},
	{"2022-07-12T16:41:02.000000Z", "null", 47676.4, 72, -4.25, `P"x`},
	{"2022-07-12T16:41:03.000000Z", "0", 47676.4, 72, 100, "N\nq"},
	{"2022-07-12T16:41:04.000000Z", "null", 47676.5, 58, 0, "null"},
}

func TestFinalizeChunkBoundaries(t *testing.T) {
	svc, pool := newService(t, ingest.Options{})
	check := func(t *testing.T, vehicleID string, total int) {
		t.Helper()
		res := finalize(t, svc, vehicleID, "f.csv", total, false)
		if res.RowsInserted != 5 || res.RowsReceived != 5 {
			t.Errorf("result = %+v, want 5 rows received and inserted", res)
		}
		if got := storedRows(t, pool, vehicleID); !slices.Equal(got, exportLayoutRows) {
			t.Errorf("stored %+v, want %+v", got, exportLayoutRows)
		}
	}
	t.Run("one byte per chunk", func(t *testing.T) {
		file := exportLayout("bytes")
		check(t, "bytes", upload(t, svc, "bytes", "f.csv", []byte(file), 1))
	})
	t.Run("every split in two", func(t *testing.T) {
		// Fixed-width vehicle ids keep the file the same length for every split point.
		n := len(exportLayout("v000"))
		for cut := 1; cut < n; cut++ {
			v := fmt.Sprintf("v%03d", cut)
			file := []byte(exportLayout(v))
			for i, c := range [][]byte{file[:cut], file[cut:]} {
				if _, err := svc.PutChunk(t.Context(), ingest.ChunkMeta{VehicleID: v, FileName: "f.csv", Index: i, Total: 2}, c); err != nil {
					t.Fatalf("PutChunk: %v", err)
				}
			}
			check(t, v, 2)
			if t.Failed() {
				t.Fatalf("file split after byte %d of %d: %q | %q", cut, n, file[:cut], file[cut:])
			}
		}
	})
}

func TestFinalizeVehicleIDColumn(t *testing.T) {
	svc, pool := newService(t, ingest.Options{})
	file := "vehicle_id," + realHeader +
		"veh1,2022-07-12 16:41:00,1,2,3,4,D\n" +
		"veh2,2022-07-12 16:41:01,1,2,3,4,D\n" +
		",2022-07-12 16:41:02,1,2,3,4,D\n"
	total := upload(t, svc, "veh1", "f.csv", []byte(file), 1<<20)
	_, err := svc.Finalize(t.Context(), ingest.FinalizeRequest{VehicleID: "veh1", FileName: "f.csv", Total: total})
	var rie *ingest.RowsInvalidError
	if !errors.As(err, &rie) {
		t.Fatalf("Finalize = %v (%T), want *RowsInvalidError", err, err)
	}
	if rie.Invalid != 2 || len(rie.Errors) != 2 {
		t.Fatalf("invalid = %d, errors %+v; want 2 of them", rie.Invalid, rie.Errors)
	}
	for i, wantLine := range []int{3, 4} {
		e := rie.Errors[i]
		if e.Line != wantLine || e.Column == nil || *e.Column != "vehicle_id" {
			t.Errorf("error %d = line %d column %s, want line %d column vehicle_id", i, e.Line, deref(e.Column), wantLine)
		}
	}
	wantNothingInserted(t, pool)
}

// A row that another transaction inserts while the finalize runs is a duplicate like any other,
// not a failure.
func TestFinalizeConcurrentInsert(t *testing.T) {
	svc, pool := newService(t, ingest.Options{})
	file := realHeader +
		"2022-07-12 16:41:00,1,2,3,4,D\n" +
		"2022-07-12 16:41:01,1,2,3,4,D\n" + // inserted meanwhile by the other transaction
		"2022-07-12 16:41:02,5,2,3,4,D\n" +
		"2022-07-12 16:41:02,6,2,3,4,D\n" // a duplicate within the file: the first wins
	total := upload(t, svc, "veh1", "f.csv", []byte(file), 1<<20)

	other, err := pool.Begin(t.Context())
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	defer other.Rollback(context.WithoutCancel(t.Context()))
	_, err = db.New().CreateVehicleData(t.Context(), other, db.CreateVehicleDataParams{
		VehicleID: "veh1", Timestamp: time.Date(2022, 7, 12, 16, 41, 1, 0, time.UTC), Odometer: 9, Soc: 9, Elevation: 9,
	})
	if err != nil {
		t.Fatalf("insert a record: %v", err)
	}
	done := make(chan error, 1)
	var res ingest.Result
	go func() {
		var err error
		res, err = svc.Finalize(t.Context(), ingest.FinalizeRequest{VehicleID: "veh1", FileName: "f.csv", Total: total})
		done <- err
	}()
	// The finalize waits on the other transaction's uncommitted rows: its new vehicle (the
	// vehicle's key is made on first use) or its sample ...
	waitFor(t, pool, `SELECT EXISTS (SELECT FROM pg_stat_activity
		WHERE datname = current_database() AND wait_event_type = 'Lock'
		  AND (query ILIKE 'insert into samples%' OR query ILIKE 'copy%samples%' OR query ILIKE '%vehicle_key_for%'))`, done)
	// ... which then commits: the finalize must count the row as a duplicate.
	if err := other.Commit(t.Context()); err != nil {
		t.Fatalf("commit: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Finalize: %v", err)
	}
	if res.RowsInserted != 2 || res.RowsDuplicate != 2 {
		t.Errorf("result = %+v, want 2 inserted, 2 duplicate", res)
	}
	want := []storedRow{
		{"2022-07-12T16:41:00.000000Z", "1", 2, 3, 4, "D"},
		{"2022-07-12T16:41:01.000000Z", "null", 9, 9, 9, "null"},
		{"2022-07-12T16:41:02.000000Z", "5", 2, 3, 4, "D"},
	}
	if got := storedRows(t, pool, "veh1"); !slices.Equal(got, want) {
		t.Errorf("stored %+v, want %+v", got, want)
	}
}

// waitFor polls query (a SELECT of one boolean) until it is true. It fails the test if done
// receives first (what was to be observed has already finished) or after 30 seconds.
func waitFor(t *testing.T, pool *pgxpool.Pool, query string, done <-chan error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var ok bool
		if err := pool.QueryRow(t.Context(), query).Scan(&ok); err != nil {
			t.Fatalf("poll: %v", err)
		}
		if ok {
			return
		}
		select {
		case err := <-done:
			t.Fatalf("finished (%v) before the awaited state was seen", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("awaited state not seen within 30s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestFinalizeTwice(t *testing.T) {
	svc, _ := newService(t, ingest.Options{})
	total := upload(t, svc, "veh1", "f.csv", genCSV(10, 1), 100)
	req := ingest.FinalizeRequest{VehicleID: "veh1", FileName: "f.csv", Total: total}
	if _, err := svc.Finalize(t.Context(), req); err != nil {
		t.Fatalf("first Finalize: %v", err)
	}
	_, err := svc.Finalize(t.Context(), req)
	wantKind(t, err, apperr.KindNotFound)
	_, err = svc.Status(t.Context(), "veh1", "f.csv")
	wantKind(t, err, apperr.KindNotFound)
}

func TestFinalizeConcurrent(t *testing.T) {
	svc, pool := newService(t, ingest.Options{})
	const rows = 40_000
	total := upload(t, svc, "veh1", "f.csv", genCSV(rows, 1), 256<<10)

	const n = 4
	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			_, errs[i] = svc.Finalize(t.Context(), ingest.FinalizeRequest{VehicleID: "veh1", FileName: "f.csv", Total: total})
		})
	}
	close(start)
	wg.Wait()
	succeeded := 0
	for i, err := range errs {
		switch {
		case err == nil:
			succeeded++
		case isKind(err, apperr.KindConflict), isKind(err, apperr.KindNotFound):
			// It ran while the winner held the upload (409), or after it finished (404).
		default:
			t.Errorf("finalize %d: %v, want success, conflict or not found", i, err)
		}
	}
	if succeeded != 1 {
		t.Errorf("%d finalizes succeeded (%v), want exactly 1", succeeded, errs)
	}
	if r, _ := countRecords(t, pool); r != rows {
		t.Errorf("stored %d records, want %d", r, rows)
	}
}

// An interrupted finalize (its context cancelled, or its connection killed as in a crash),
// in the COPY or in the INSERT, leaves nothing behind, and the upload can be finalized again.
func TestFinalizeInterrupted(t *testing.T) {
	tests := []struct {
		name  string
		query string // the statement to interrupt, as pg_stat_activity shows it
		kill  bool   // terminate the backend instead of cancelling the context
		dup   bool   // a file with a duplicate row, which takes the staged path
	}{
		{"cancel during direct COPY", "copy%samples%", false, false},
		{"kill during direct COPY", "copy%samples%", true, false},
		{"cancel during staged COPY", "copy%ingest_rows%", false, true},
		{"cancel during INSERT", "insert into samples%", false, true},
		{"kill during staged COPY", "copy%ingest_rows%", true, true},
		{"kill during INSERT", "insert into samples%", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc, pool := newService(t, ingest.Options{})
			const rows = 150_000
			total := uploadGeneratedDup(t, svc, "veh1", "f.csv", rows, 1<<20, tt.dup)

			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, err := svc.Finalize(ctx, ingest.FinalizeRequest{VehicleID: "veh1", FileName: "f.csv", Total: total})
				done <- err
			}()
			active := `FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' AND query ILIKE '` + tt.query + `'`
			waitFor(t, pool, `SELECT EXISTS (SELECT `+active+`)`, done)
			if tt.kill {
				if _, err := pool.Exec(t.Context(), `SELECT pg_terminate_backend(pid) `+active); err != nil {
					t.Fatalf("terminate backend: %v", err)
				}
			} else {
				cancel()
			}
			err := <-done
			if err == nil || (!tt.kill && !errors.Is(err, context.Canceled)) {
				t.Fatalf("interrupted Finalize = %v, want an error (wrapping context.Canceled: %v)", err, !tt.kill)
			}
			wantNothingInserted(t, pool)
			wantChunksKept(t, svc, "veh1", "f.csv", total)

			// A terminated backend reports FATAL to its client before it has released its locks,
			// so a retry sent at once can still find the upload locked: a 409 that asks to try
			// again, as a client would. A lock held longer than that is a failure.
			var res ingest.Result
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				res, err = svc.Finalize(t.Context(), ingest.FinalizeRequest{VehicleID: "veh1", FileName: "f.csv", Total: total})
				if err == nil || !isKind(err, apperr.KindConflict) || time.Now().After(deadline) {
					break
				}
			}
			if err != nil {
				t.Fatalf("second Finalize: %v", err)
			}
			if res.RowsInserted != rows {
				t.Errorf("second finalize inserted %d rows, want %d", res.RowsInserted, rows)
			}
			if r, _ := countRecords(t, pool); r != rows {
				t.Errorf("stored %d records, want %d", r, rows)
			}
		})
	}
}

// TestFinalizeMemory checks that a finalize's memory does not grow with the file: the live
// heap stays far below the file's size.
func TestFinalizeMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("uploads 25 MiB")
	}
	svc, _ := newService(t, ingest.Options{})
	const rows = 600_000 // about 25 MiB
	total := uploadGenerated(t, svc, "veh1", "f.csv", rows, 1<<20)

	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	live := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	runtime.GC()
	base := live()
	stop := make(chan struct{})
	peak := make(chan uint64)
	go func() {
		var m uint64
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			m = max(m, live())
			select {
			case <-stop:
				peak <- m
				return
			case <-tick.C:
			}
		}
	}()
	res := finalize(t, svc, "veh1", "f.csv", total, false)
	close(stop)
	grown := int64(<-peak) - int64(base)
	if res.RowsInserted != rows {
		t.Errorf("rows inserted = %d, want %d", res.RowsInserted, rows)
	}
	t.Logf("live heap: base %d KiB, peak growth %d KiB for a %d-chunk file", base>>10, grown>>10, total)
	// A few chunks' worth; holding the file (or its rows) would take over 25 MiB.
	if limit := int64(8 << 20); grown > limit {
		t.Errorf("live heap grew by %d KiB during finalize, want under %d KiB", grown>>10, limit>>10)
	}
}

// A finalize holds two connections; on a small pool, concurrent finalizes must queue for them
// instead of each holding one and waiting forever for a second.
func TestFinalizeSmallPool(t *testing.T) {
	u := testdb.NewURL(t)
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	for _, tt := range []struct {
		maxConns int
		wantErr  bool
	}{{1, true}, {2, false}} {
		t.Run(fmt.Sprintf("%d connections", tt.maxConns), func(t *testing.T) {
			pool, err := database.Open(t.Context(), fmt.Sprintf("%s%spool_max_conns=%d", u, sep, tt.maxConns))
			if err != nil {
				t.Fatalf("open pool: %v", err)
			}
			defer pool.Close()
			svc := ingest.New(pool, ingest.Options{})
			const n = 4
			for i := range n {
				upload(t, svc, "veh1", fmt.Sprintf("f%d-%d.csv", tt.maxConns, i), genCSV(5000, uint64(i)), 64<<10)
			}
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					name := fmt.Sprintf("f%d-%d.csv", tt.maxConns, i)
					st, err := svc.Status(ctx, "veh1", name)
					if err == nil {
						_, err = svc.Finalize(ctx, ingest.FinalizeRequest{VehicleID: "veh1", FileName: name, Total: st.Total, SkipInvalid: true})
					}
					errs[i] = err
				})
			}
			wg.Wait()
			for i, err := range errs {
				if gotErr := err != nil; gotErr != tt.wantErr {
					t.Errorf("finalize %d: %v, want error: %v", i, err, tt.wantErr)
				}
				if ctx.Err() != nil {
					t.Fatalf("finalizes still waiting after a minute: %v", err)
				}
			}
		})
	}
}
