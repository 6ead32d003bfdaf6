package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/vehicle-data/vehicle-data/gen/client"
	"github.com/vehicle-data/vehicle-data/internal/config"
)

// excelEpoch is day 0 of Excel's 1900 date system (as it counts after 1900-02-28).
var excelEpoch = time.Date(1899, 12, 30, 0, 0, 0, 0, time.UTC)

// download fetches an export with the plain generated client (the one that does not read
// whole bodies) and returns status, headers and body.
func download(t *testing.T, e *env, params client.ExportVehicleDataParams) (int, http.Header, []byte) {
	t.Helper()
	c, err := client.NewClient(e.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.ExportVehicleData(t.Context(), &params)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

func exportSeed(t *testing.T, e *env) []client.VehicleData {
	t.Helper()
	return e.seed(t,
		rec("veh,1", t0.Add(2*time.Second), ptr(12.5), 80, ptr("D")),
		rec("veh,1", t0, nil, 81, nil),
		client.VehicleDataInput{VehicleId: "veh,1", Timestamp: t0.Add(time.Second + 123456*time.Microsecond), Speed: ptr(0.0),
			Odometer: 1e21, Soc: 0, Elevation: -12.25, ShiftState: ptr(`P "quoted"`)},
		rec("other", t0, ptr(1.0), 1, ptr("R")),
	)
}

func TestExportFormatsMatchStoredRows(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	stored := exportSeed(t, e)
	want := []client.VehicleData{stored[1], stored[2], stored[0]} // veh,1 by timestamp

	// The list endpoint is the reference: export must agree with it exactly.
	lr, err := e.Client.ListVehicleDataWithResponse(t.Context(), &client.ListVehicleDataParams{VehicleId: ptr("veh,1")})
	if err != nil || lr.JSON200 == nil {
		t.Fatal(err, lr.Body)
	}
	listJSON, _ := json.Marshal(lr.JSON200.Results)

	t.Run("json", func(t *testing.T) {
		code, hdr, body := download(t, e, client.ExportVehicleDataParams{VehicleId: ptr("veh,1"), Export: ptr(client.Json)})
		if code != 200 || hdr.Get("Content-Type") != "application/json" {
			t.Fatalf("got %d %q: %s", code, hdr.Get("Content-Type"), body)
		}
		var got []client.VehicleData
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("not a JSON array: %v", err)
		}
		gotJSON, _ := json.Marshal(got)
		if !bytes.Equal(gotJSON, listJSON) {
			t.Errorf("export differs from list:\n got %s\nwant %s", gotJSON, listJSON)
		}
		// Same bytes as the list's encoding for each record (numbers, escaping, timestamps).
		for _, r := range lr.JSON200.Results {
			one, _ := json.Marshal(r)
			var m map[string]any
			_ = json.Unmarshal(one, &m)
			if !bytes.Contains(body, []byte(`"timestamp":"`+r.Timestamp.Format(time.RFC3339Nano)+`"`)) {
				t.Errorf("timestamp %s not in RFC 3339 UTC form in %s", r.Timestamp, body)
			}
		}
	})

	t.Run("ndjson", func(t *testing.T) {
		code, hdr, body := download(t, e, client.ExportVehicleDataParams{VehicleId: ptr("veh,1"), Export: ptr(client.Ndjson)})
		if code != 200 || hdr.Get("Content-Type") != "application/x-ndjson" {
			t.Fatalf("got %d %q", code, hdr.Get("Content-Type"))
		}
		var got []client.VehicleData
		sc := bufio.NewScanner(bytes.NewReader(body))
		for sc.Scan() {
			var r client.VehicleData
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("line %q: %v", sc.Text(), err)
			}
			got = append(got, r)
		}
		gotJSON, _ := json.Marshal(got)
		if !bytes.Equal(gotJSON, listJSON) {
			t.Errorf("ndjson differs from list:\n got %s\nwant %s", gotJSON, listJSON)
		}
	})

	t.Run("csv", func(t *testing.T) {
		code, hdr, body := download(t, e, client.ExportVehicleDataParams{VehicleId: ptr("veh,1")})
		if code != 200 || hdr.Get("Content-Type") != "text/csv; charset=utf-8" {
			t.Fatalf("got %d %q", code, hdr.Get("Content-Type"))
		}
		_, params, err := mime.ParseMediaType(hdr.Get("Content-Disposition"))
		if err != nil || params["filename"] == "" || !strings.HasSuffix(params["filename"], ".csv") || strings.ContainsAny(params["filename"], `,/"`) {
			t.Errorf("Content-Disposition %q: %v", hdr.Get("Content-Disposition"), err)
		}
		rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(rows[0], ",") != "id,vehicle_id,timestamp,speed,odometer,soc,elevation,shift_state" || len(rows) != 4 {
			t.Fatalf("csv: %q", rows)
		}
		for i, r := range want {
			row := rows[i+1]
			speed := ""
			if r.Speed != nil {
				speed = strconv.FormatFloat(*r.Speed, 'g', -1, 64)
			}
			shift := ""
			if r.ShiftState != nil {
				shift = *r.ShiftState
			}
			ts, err := time.Parse(time.RFC3339Nano, row[2])
			odo, _ := strconv.ParseFloat(row[4], 64)
			if row[0] != strconv.FormatInt(r.Id, 10) || row[1] != r.VehicleId || err != nil || !ts.Equal(r.Timestamp) ||
				row[3] != speed || odo != r.Odometer || row[5] != strconv.Itoa(int(r.Soc)) || row[7] != shift {
				t.Errorf("row %d: got %q, want %+v", i, row, r)
			}
		}
	})

	t.Run("xlsx", func(t *testing.T) {
		code, hdr, body := download(t, e, client.ExportVehicleDataParams{VehicleId: ptr("veh,1"), Export: ptr(client.Xlsx)})
		if code != 200 || hdr.Get("Content-Type") != "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" {
			t.Fatalf("got %d %q: %.200s", code, hdr.Get("Content-Type"), body)
		}
		f, err := excelize.OpenReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		sheet := f.GetSheetName(0)
		rows, err := f.GetRows(sheet, excelize.Options{RawCellValue: true})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(rows[0], ",") != "id,vehicle_id,timestamp,speed,odometer,soc,elevation,shift_state" || len(rows) != 4 {
			t.Fatalf("xlsx rows: %q", rows)
		}
		for i, r := range want {
			row := i + 2
			id, _ := f.GetCellValue(sheet, "A"+strconv.Itoa(row), excelize.Options{RawCellValue: true})
			if id != strconv.FormatInt(r.Id, 10) {
				t.Errorf("row %d id: got %q, want %d", row, id, r.Id)
			}
			// The timestamp is a number (an Excel serial date), not text.
			typ, _ := f.GetCellType(sheet, "C"+strconv.Itoa(row))
			raw, _ := f.GetCellValue(sheet, "C"+strconv.Itoa(row), excelize.Options{RawCellValue: true})
			serial, err := strconv.ParseFloat(raw, 64)
			if err != nil || typ == excelize.CellTypeSharedString || typ == excelize.CellTypeInlineString {
				t.Errorf("row %d timestamp: type %v raw %q, want a numeric date", row, typ, raw)
			} else if got := excelEpoch.Add(time.Duration(serial * 24 * float64(time.Hour))); got.Sub(r.Timestamp).Abs() > time.Millisecond {
				t.Errorf("row %d timestamp: got %v, want %v", row, got, r.Timestamp)
			}
			speed, _ := f.GetCellValue(sheet, "D"+strconv.Itoa(row), excelize.Options{RawCellValue: true})
			if r.Speed == nil && speed != "" || r.Speed != nil && speed != strconv.FormatFloat(*r.Speed, 'g', -1, 64) {
				t.Errorf("row %d speed: got %q, want %v", row, speed, r.Speed)
			}
			socType, _ := f.GetCellType(sheet, "F"+strconv.Itoa(row))
			if socType == excelize.CellTypeSharedString || socType == excelize.CellTypeInlineString {
				t.Errorf("row %d soc is text", row)
			}
		}
	})
}

func TestExportEmptyResultsAreValidFiles(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, f := range []client.ExportVehicleDataParamsExport{client.Csv, client.Json, client.Ndjson, client.Xlsx} {
		code, hdr, body := download(t, e, client.ExportVehicleDataParams{Export: ptr(f)})
		if code != 200 {
			t.Fatalf("%s: got %d %s", f, code, body)
		}
		if want := `attachment; filename="vehicle_data.` + string(f) + `"`; hdr.Get("Content-Disposition") != want {
			t.Errorf("%s: Content-Disposition %q, want %q", f, hdr.Get("Content-Disposition"), want)
		}
		switch f {
		case client.Csv:
			if string(body) != "id,vehicle_id,timestamp,speed,odometer,soc,elevation,shift_state\n" {
				t.Errorf("csv: %q", body)
			}
		case client.Json:
			var v []any
			if err := json.Unmarshal(body, &v); err != nil || v == nil || len(v) != 0 {
				t.Errorf("json: %q %v", body, err)
			}
		case client.Ndjson:
			if len(body) != 0 {
				t.Errorf("ndjson: %q", body)
			}
		case client.Xlsx:
			x, err := excelize.OpenReader(bytes.NewReader(body))
			if err != nil {
				t.Fatalf("xlsx: %v", err)
			}
			rows, _ := x.GetRows(x.GetSheetName(0))
			if len(rows) != 1 {
				t.Errorf("xlsx: %d rows, want the header only", len(rows))
			}
			x.Close()
		}
	}
}

func TestExportParametersCheckedFirst(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *config.Config) { c.XLSXRowLimit = 2 })
	exportSeed(t, e)
	for _, q := range []string{"export=pdf", "export=CSV", "ordering=nope", "initial_timestamp=x", "timezone=Nope", "initial_timestamp=2024-06-02&final_timestamp=2024-06-01"} {
		code, hdr, body := e.do(t, http.MethodGet, "/api/v1/vehicle_data/export/?"+q, "", nil)
		if code != 400 || hdr.Get("Content-Disposition") != "" {
			t.Errorf("%s: got %d (%q): %s", q, code, hdr.Get("Content-Disposition"), body)
			continue
		}
		problem(t, body)
	}
	// Over the XLSX limit: 413 naming the count and pointing to the streamed formats.
	code, _, body := e.do(t, http.MethodGet, "/api/v1/vehicle_data/export/?export=xlsx", "", nil)
	if code != 413 {
		t.Fatalf("xlsx over the limit: got %d %s", code, body)
	}
	if p := problem(t, body); !strings.Contains(p.Detail, "4 rows") || !strings.Contains(p.Detail, "csv") {
		t.Errorf("413 detail %q should give the count and point to csv/json/ndjson", p.Detail)
	}
	// Within the limit with a filter; and CSV has no limit.
	if code, _, body := e.do(t, http.MethodGet, "/api/v1/vehicle_data/export/?export=xlsx&vehicle_id=other", "", nil); code != 200 {
		t.Errorf("xlsx within the limit: got %d %.100s", code, body)
	}
	if code, _, _ := e.do(t, http.MethodGet, "/api/v1/vehicle_data/export?export=csv", "", nil); code != 200 {
		t.Errorf("csv without trailing slash: got %d", code)
	}
}

func TestExportFilenameIsSafe(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, id := range []string{`../../etc/passwd`, "a\"b\\c", "vé hicule", "x\r\nSet-Cookie: a=b"} {
		code, hdr, _ := e.do(t, http.MethodGet, "/api/v1/vehicle_data/export/?"+url.Values{"vehicle_id": {id}}.Encode(), "", nil)
		if code != 200 {
			t.Errorf("%q: got %d", id, code)
			continue
		}
		cd := hdr.Get("Content-Disposition")
		_, params, err := mime.ParseMediaType(cd)
		if err != nil || strings.ContainsAny(params["filename"], "/\\\"\r\n") || hdr.Get("Set-Cookie") != "" {
			t.Errorf("%q: unsafe Content-Disposition %q (%v)", id, cd, err)
		}
	}
}

// A client that goes away must stop the export's query at once and free its connection.
func TestExportStopsWhenClientDisconnects(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, err := e.Pool.Exec(t.Context(), `INSERT INTO samples (vehicle_key, "timestamp", odometer, soc, elevation)
		SELECT (SELECT vehicle_key_for('big')), $1::timestamptz + g * interval '1 second', g, 50, 0 FROM generate_series(1, 300000) g`, t0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.URL+"/api/v1/vehicle_data/export/?export=json", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	if !exportQueryRunning(t, e) {
		t.Fatal("the export query is not running while the export is being read")
	}
	cancel()
	resp.Body.Close()
	deadline := time.Now().Add(5 * time.Second)
	for exportQueryRunning(t, e) {
		if time.Now().After(deadline) {
			t.Fatal("the export query still runs 5s after the client went away")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func exportQueryRunning(t *testing.T, e *env) bool {
	t.Helper()
	var n int
	err := e.Pool.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()
		  AND query LIKE 'SELECT s.id, s.vehicle_key%' AND state <> 'idle'`).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// Once the status line is sent, a failure must not end the file cleanly: the connection is
// aborted so the client sees a broken transfer, not a short file that looks complete.
func TestExportFailureAfterStartAbortsConnection(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, err := e.Pool.Exec(t.Context(), `INSERT INTO samples (vehicle_key, "timestamp", odometer, soc, elevation)
		SELECT (SELECT vehicle_key_for('big')), $1::timestamptz + g * interval '1 second', g, 50, 0 FROM generate_series(1, 300000) g`, t0)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(e.URL + "/api/v1/vehicle_data/export/?export=csv")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("got %d", resp.StatusCode)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	// The database goes away mid-export.
	if _, err := e.Pool.Exec(t.Context(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE 'SELECT s.id, s.vehicle_key%'`); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Fatalf("the export ended cleanly after its query was killed (%d more bytes); want a broken transfer", len(rest))
	}
}
