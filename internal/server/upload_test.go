package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/vehicle-data/vehicle-data/gen/client"
	"github.com/vehicle-data/vehicle-data/internal/config"
	"github.com/vehicle-data/vehicle-data/internal/csvrows"
	"github.com/vehicle-data/vehicle-data/internal/testdb"
)

// chunkForm builds an upload_chunk body; a nil value leaves that field out.
func chunkForm(t *testing.T, chunk []byte, fields map[string]string) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, k := range []string{"file_name", "chunk_index", "total_chunks", "vehicle_id"} {
		if v, ok := fields[k]; ok {
			_ = w.WriteField(k, v)
		}
	}
	if chunk != nil {
		part, err := w.CreateFormFile("chunk", "blob")
		if err != nil {
			t.Fatal(err)
		}
		part.Write(chunk)
	}
	w.Close()
	return w.FormDataContentType(), buf.Bytes()
}

func (e *env) putChunk(t *testing.T, vehicle, file string, index, total int, data []byte) (int, []byte) {
	t.Helper()
	ct, body := chunkForm(t, data, map[string]string{
		"file_name": file, "chunk_index": fmt.Sprint(index), "total_chunks": fmt.Sprint(total), "vehicle_id": vehicle,
	})
	code, _, b := e.do(t, http.MethodPost, "/api/v1/vehicle_data/upload_chunk/", ct, body)
	return code, b
}

func (e *env) finalize(t *testing.T, vehicle, file string, total int, skip bool) (int, []byte) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"vehicle_id": vehicle, "file_name": file, "total_chunks": total, "skip_invalid_rows": skip})
	code, _, body := e.do(t, http.MethodPost, "/api/v1/vehicle_data/finalize_upload", "application/json", b)
	return code, body
}

const csvHeader = "timestamp,speed,odometer,soc,elevation,shift_state\n"

func TestUploadChunkValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *config.Config) { c.MaxChunkBytes = 1000 })
	full := map[string]string{"file_name": "f.csv", "chunk_index": "0", "total_chunks": "2", "vehicle_id": "v"}
	without := func(k string) map[string]string {
		m := map[string]string{}
		for kk, v := range full {
			if kk != k {
				m[kk] = v
			}
		}
		return m
	}
	with := func(k, v string) map[string]string {
		m := without(k)
		m[k] = v
		return m
	}
	tests := []struct {
		name   string
		chunk  []byte
		fields map[string]string
		want   int
		field  string
	}{
		{"missing chunk", nil, full, 400, "chunk"},
		{"missing file_name", []byte("x"), without("file_name"), 400, "file_name"},
		{"missing chunk_index", []byte("x"), without("chunk_index"), 400, "chunk_index"},
		{"missing total_chunks", []byte("x"), without("total_chunks"), 400, "total_chunks"},
		{"missing vehicle_id", []byte("x"), without("vehicle_id"), 400, "vehicle_id"},
		{"index out of range", []byte("x"), with("chunk_index", "2"), 400, "chunk_index"},
		{"negative index", []byte("x"), with("chunk_index", "-1"), 400, "chunk_index"},
		{"index not a number", []byte("x"), with("chunk_index", "one"), 400, "chunk_index"},
		{"total zero", []byte("x"), with("total_chunks", "0"), 400, "total_chunks"},
		{"empty file name", []byte("x"), with("file_name", ""), 400, "file_name"},
		{"file name too long", []byte("x"), with("file_name", strings.Repeat("n", 256)), 400, "file_name"},
		{"vehicle id too long", []byte("x"), with("vehicle_id", strings.Repeat("v", 101)), 400, "vehicle_id"},
		{"chunk over the limit", bytes.Repeat([]byte("x"), 1001), full, 413, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct, body := chunkForm(t, tt.chunk, tt.fields)
			code, _, b := e.do(t, http.MethodPost, "/api/v1/vehicle_data/upload_chunk/", ct, body)
			if code != tt.want {
				t.Fatalf("got %d, want %d: %s", code, tt.want, b)
			}
			p := problem(t, b)
			if tt.field != "" && !slices.Contains(fieldNames(p), tt.field) {
				t.Errorf("error names %v, want %s: %s", fieldNames(p), tt.field, b)
			}
			if code == 413 && !strings.Contains(p.Detail, "1000") {
				t.Errorf("413 must give the limit: %q", p.Detail)
			}
		})
	}
	t.Run("not multipart is 415", func(t *testing.T) {
		code, _, b := e.do(t, http.MethodPost, "/api/v1/vehicle_data/upload_chunk/", "application/json", []byte(`{}`))
		if code != 415 {
			t.Fatalf("got %d: %s", code, b)
		}
		problem(t, b)
	})
	t.Run("broken multipart is 400", func(t *testing.T) {
		code, _, b := e.do(t, http.MethodPost, "/api/v1/vehicle_data/upload_chunk/", "multipart/form-data; boundary=zzz", []byte("--zzz\r\nnot a header\r\n"))
		if code != 400 {
			t.Fatalf("got %d: %s", code, b)
		}
		problem(t, b)
	})
	t.Run("a chunk of exactly the limit is fine", func(t *testing.T) {
		if code, b := e.putChunk(t, "v", "ok.csv", 0, 1, bytes.Repeat([]byte("x"), 1000)); code != 200 {
			t.Fatalf("got %d: %s", code, b)
		}
	})
	t.Run("total_chunks mismatch is 409", func(t *testing.T) {
		if code, b := e.putChunk(t, "v", "m.csv", 0, 2, []byte("a")); code != 200 {
			t.Fatalf("first chunk: %d %s", code, b)
		}
		code, b := e.putChunk(t, "v", "m.csv", 1, 3, []byte("b"))
		if code != 409 {
			t.Fatalf("got %d: %s", code, b)
		}
		problem(t, b)
	})
}

func TestUploadRoundTrip(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	file := csvHeader +
		"2022-07-12 16:41:00.966,37,47676.2,73,4,D\r\n" +
		"2022-07-12 16:41:05.967,NULL,47676.3,73,4,NULL\r\n" +
		"\"2022-07-12 16:41:10\",\"35\",47676.4,\"73.0\",-4,\"D\"\r\n" +
		"2022-07-12 16:41:00.966,1,1,1,1,D\r\n" // duplicate of line 2
	data := append([]byte("\xef\xbb\xbf"), file...)
	// Three chunks that cut records (and the BOM) in the middle, sent out of order, one twice.
	parts := [][]byte{data[:2], data[2:70], data[70:]}
	name := "../../etc/passwd"
	for _, i := range []int{2, 0, 1, 2} {
		if code, b := e.putChunk(t, "veh1", name, i, 3, parts[i]); code != 200 {
			t.Fatalf("chunk %d: %d %s", i, code, b)
		} else if i == 1 && !strings.Contains(string(b), `"received_chunks":3`) {
			t.Errorf("chunk %d: %s", i, b)
		}
	}
	st, err := e.Client.GetUploadStatusWithResponse(t.Context(), &client.GetUploadStatusParams{VehicleId: "veh1", FileName: name})
	if err != nil || st.JSON200 == nil {
		t.Fatal(err, st.Body)
	}
	if st.JSON200.Bytes != int64(len(data)) || len(st.JSON200.MissingChunks) != 0 || !slices.Equal(st.JSON200.ReceivedChunks, []int32{0, 1, 2}) {
		t.Errorf("status: %s", st.Body)
	}

	code, b := e.finalize(t, "veh1", name, 3, false)
	if code != 200 {
		t.Fatalf("finalize: %d %s", code, b)
	}
	var res client.FinalizeResult
	json.Unmarshal(b, &res)
	if res.Status != "processed" || res.RowsReceived != 4 || res.RowsInserted != 3 || res.RowsDuplicate != 1 || res.RowsInvalid != 0 {
		t.Errorf("finalize result: %s", b)
	}
	// The chunks are gone: a second finalize and the status are 404.
	if code, b := e.finalize(t, "veh1", name, 3, false); code != 404 {
		t.Errorf("second finalize: %d %s", code, b)
	}
	if code, _, b := e.do(t, http.MethodGet, "/api/v1/vehicle_data/upload_status/?"+url.Values{"vehicle_id": {"veh1"}, "file_name": {name}}.Encode(), "", nil); code != 404 {
		t.Errorf("status after finalize: %d %s", code, b)
	}
	// The rows are there, with their nulls, and the figures follow.
	code, p, body := listBody(t, e, "vehicle_id=veh1")
	if code != 200 || p.Count != 3 || p.Results[1].Speed != nil || p.Results[1].ShiftState != nil || p.Results[2].Soc != 73 || p.Results[2].Elevation != -4 {
		t.Errorf("stored rows: %s", body)
	}
	// Uploading the CSV export of those rows again inserts nothing.
	_, _, csvBody := download(t, e, client.ExportVehicleDataParams{VehicleId: ptr("veh1")})
	if code, b := e.putChunk(t, "veh1", "again.csv", 0, 1, csvBody); code != 200 {
		t.Fatalf("re-upload chunk: %d %s", code, b)
	}
	code, b = e.finalize(t, "veh1", "again.csv", 1, false)
	json.Unmarshal(b, &res)
	if code != 200 || res.RowsReceived != 3 || res.RowsInserted != 0 || res.RowsDuplicate != 3 {
		t.Errorf("re-upload of the export: %d %s", code, b)
	}
}

func TestFinalizeErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	t.Run("unknown upload is 404", func(t *testing.T) {
		if code, b := e.finalize(t, "v", "nope.csv", 1, false); code != 404 {
			t.Fatalf("got %d %s", code, b)
		}
	})
	t.Run("missing chunks is 409 with the list, then finalize works", func(t *testing.T) {
		e.putChunk(t, "v", "gap.csv", 0, 3, []byte(csvHeader))
		e.putChunk(t, "v", "gap.csv", 2, 3, []byte("1,1,0,D\n"))
		code, b := e.finalize(t, "v", "gap.csv", 3, false)
		var c client.UploadConflict
		json.Unmarshal(b, &c)
		if code != 409 || c.MissingChunks == nil || !slices.Equal(*c.MissingChunks, []int32{1}) || c.Detail == "" {
			t.Fatalf("got %d %s", code, b)
		}
		e.putChunk(t, "v", "gap.csv", 1, 3, []byte("2024-06-01T00:00:00Z,1,"))
		if code, b := e.finalize(t, "v", "gap.csv", 3, false); code != 200 {
			t.Fatalf("after sending the missing chunk: %d %s", code, b)
		}
	})
	t.Run("total mismatch is 409", func(t *testing.T) {
		e.putChunk(t, "v", "t.csv", 0, 1, []byte(csvHeader))
		if code, b := e.finalize(t, "v", "t.csv", 2, false); code != 409 {
			t.Fatalf("got %d %s", code, b)
		}
	})
	t.Run("bad header is 400 and keeps the chunks", func(t *testing.T) {
		e.putChunk(t, "v", "h.csv", 0, 1, []byte("timestamp,speed,odometer,soc,elevation,colour\n"))
		code, b := e.finalize(t, "v", "h.csv", 1, false)
		if code != 400 || !strings.Contains(problem(t, b).Detail, "shift_state") || !strings.Contains(string(b), "colour") {
			t.Fatalf("got %d %s", code, b)
		}
		if code, _, _ := e.do(t, http.MethodGet, "/api/v1/vehicle_data/upload_status/?vehicle_id=v&file_name=h.csv", "", nil); code != 200 {
			t.Errorf("chunks were not kept after a 400")
		}
	})
	t.Run("malformed CSV is 400 naming the line", func(t *testing.T) {
		e.putChunk(t, "v", "q.csv", 0, 1, []byte(csvHeader+"2024-06-01,1,1,1,1,D\n2024-06-02,1,1,1,1,\"D\n"))
		code, b := e.finalize(t, "v", "q.csv", 1, true)
		if code != 400 || !strings.Contains(problem(t, b).Detail, "line 3") {
			t.Fatalf("got %d %s", code, b)
		}
	})
	t.Run("invalid rows: 422, nothing inserted, then skip_invalid_rows", func(t *testing.T) {
		body := csvHeader + "2024-07-01,1,1,101,1,D\n\n2024-07-02,1,1,50,1,D\n2024-07-03,x,1,50,1\n2024-07-04,1,-1,50,1,D\n"
		e.putChunk(t, "w", "r.csv", 0, 1, []byte(body))
		code, b := e.finalize(t, "w", "r.csv", 1, false)
		var inv client.RowsInvalid
		json.Unmarshal(b, &inv)
		if code != 422 || inv.RowsInvalid != 3 || len(inv.Errors) != 3 || inv.Detail == "" {
			t.Fatalf("got %d %s", code, b)
		}
		want := []struct {
			line   int64
			column string
		}{{2, "soc"}, {5, ""}, {6, "odometer"}}
		for i, w := range want {
			got := inv.Errors[i]
			col := ""
			if got.Column != nil {
				col = *got.Column
			}
			if got.Line != w.line || col != w.column || got.Message == "" {
				t.Errorf("error %d: got %+v, want line %d column %q", i, got, w.line, w.column)
			}
		}
		if code, p, _ := listBody(t, e, "vehicle_id=w"); code != 200 || p.Count != 0 {
			t.Errorf("rows were inserted despite the 422: %d", p.Count)
		}
		code, b = e.finalize(t, "w", "r.csv", 1, true)
		var res client.FinalizeResult
		json.Unmarshal(b, &res)
		if code != 200 || res.RowsInserted != 1 || res.RowsInvalid != 3 || len(res.Errors) != 3 {
			t.Fatalf("skip_invalid_rows: %d %s", code, b)
		}
	})
	t.Run("finalize body errors", func(t *testing.T) {
		code, _, b := e.do(t, http.MethodPost, "/api/v1/vehicle_data/finalize_upload/", "text/plain", []byte(`{}`))
		if code != 415 {
			t.Errorf("text/plain: got %d %s", code, b)
		}
		for _, body := range []string{`{`, `{"total_chunks":"x"}`, `{}`, `{"vehicle_id":"v","file_name":"f","total_chunks":0}`} {
			code, _, b := e.do(t, http.MethodPost, "/api/v1/vehicle_data/finalize_upload/", "application/json", []byte(body))
			if code != 400 {
				t.Errorf("%s: got %d %s", body, code, b)
			} else {
				problem(t, b)
			}
		}
	})
}

// TestFinalizeRecordSize: a row over csvrows.MaxRecordSize is one invalid row, in the 422 and
// in the 200 of skip_invalid_rows, and a 200 always reports its invalid rows, none as [].
func TestFinalizeRecordSize(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	// putFile sends data in the dashboard's 1 MiB chunks and returns their number.
	putFile := func(t *testing.T, vehicle, name, data string) int32 {
		t.Helper()
		const size = 1 << 20
		total := (len(data) + size - 1) / size
		for i := range total {
			if code, b := e.putChunk(t, vehicle, name, i, total, []byte(data[i*size:min(len(data), (i+1)*size)])); code != 200 {
				t.Fatalf("chunk %d of %d: %d %s", i, total, code, b)
			}
		}
		return int32(total)
	}
	finalize := func(t *testing.T, vehicle, name string, total int32, skip bool) *client.FinalizeUploadResponse {
		t.Helper()
		res, err := e.Client.FinalizeUploadWithResponse(ctx, client.FinalizeRequest{VehicleId: vehicle, FileName: name, TotalChunks: total, SkipInvalidRows: &skip})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	// rawFields decodes a body's top level only, so that an absent field and null stay apart.
	rawFields := func(t *testing.T, body []byte) map[string]string {
		t.Helper()
		var m map[string]json.RawMessage
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("body is not a JSON object: %v: %.200s", err, body)
		}
		out := make(map[string]string, len(m))
		for k, v := range m {
			out[k] = string(v)
		}
		return out
	}

	t.Run("oversized row: 422, then skipped with skip_invalid_rows", func(t *testing.T) {
		file := csvHeader + // line 1
			"2024-08-01,1,1,50,1,D\n" + // 2
			"2024-08-02,1,1,50,1,\"" + strings.Repeat("x\n", csvrows.MaxRecordSize/2) + "\"\n" + // 3: too long, over 1+MaxRecordSize/2 lines
			"2024-08-03,1,1,50,1,D\n"
		total := putFile(t, "big", "big.csv", file)
		wantReport := func(t *testing.T, errs []client.RowError) {
			t.Helper()
			if len(errs) != 1 || errs[0].Line != 3 || errs[0].Column != nil || errs[0].Value != "" || !strings.Contains(errs[0].Message, "longer than 1 MiB") {
				t.Errorf("errors = %+v, want one on line 3, no column, no value, saying it is longer than 1 MiB", errs)
			}
		}

		res := finalize(t, "big", "big.csv", total, false)
		if res.StatusCode() != 422 || res.JSON422 == nil || res.JSON422.RowsInvalid != 1 || res.JSON422.Detail == "" {
			t.Fatalf("finalize: %d %.300s", res.StatusCode(), res.Body)
		}
		wantReport(t, res.JSON422.Errors)
		if code, p, _ := listBody(t, e, "vehicle_id=big"); code != 200 || p.Count != 0 {
			t.Errorf("rows were inserted despite the 422: %d", p.Count)
		}

		res = finalize(t, "big", "big.csv", total, true)
		if res.StatusCode() != 200 || res.JSON200 == nil {
			t.Fatalf("finalize with skip_invalid_rows: %d %.300s", res.StatusCode(), res.Body)
		}
		if r := res.JSON200; r.RowsReceived != 3 || r.RowsInserted != 2 || r.RowsInvalid != 1 {
			t.Errorf("result: %s", res.Body)
		}
		wantReport(t, res.JSON200.Errors)
	})

	t.Run("clean file: rows_invalid 0 and errors [], with and without skip_invalid_rows", func(t *testing.T) {
		for i, skip := range []bool{true, false} {
			name := fmt.Sprintf("clean%d.csv", i)
			total := putFile(t, "clean", name, csvHeader+fmt.Sprintf("2024-09-0%d,1,1,50,1,D\n", i+1))
			res := finalize(t, "clean", name, total, skip)
			if res.StatusCode() != 200 {
				t.Fatalf("skip_invalid_rows=%v: %d %s", skip, res.StatusCode(), res.Body)
			}
			if f := rawFields(t, res.Body); f["errors"] != "[]" || f["rows_invalid"] != "0" || f["rows_inserted"] != "1" {
				t.Errorf("skip_invalid_rows=%v: body %s, want \"rows_invalid\":0 and \"errors\":[]", skip, res.Body)
			}
		}
	})
}

// Two replicas share one database: chunks go to either, finalize to the other.
func TestUploadAcrossReplicas(t *testing.T) {
	t.Parallel()
	pool := testdb.New(t)
	a, b := newEnvOn(t, pool), newEnvOn(t, pool)
	var rows strings.Builder
	rows.WriteString(csvHeader)
	for i := range 2000 {
		fmt.Fprintf(&rows, "2024-06-01 00:%02d:%02d.%d,10,%d,50,1,D\n", i/60%60, i%60, i/3600, i)
	}
	data := []byte(rows.String())
	const n = 7
	size := (len(data) + n - 1) / n
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			srv := a
			if i%2 == 1 {
				srv = b
			}
			end := min((i+1)*size, len(data))
			if code, body := srv.putChunk(t, "rep", "rep.csv", i, n, data[i*size:end]); code != 200 {
				t.Errorf("chunk %d: %d %s", i, code, body)
			}
		}()
	}
	wg.Wait()
	code, body := b.finalize(t, "rep", "rep.csv", n, false)
	if code != 200 || !strings.Contains(string(body), `"rows_inserted":2000`) {
		t.Fatalf("finalize on the other replica: %d %s", code, body)
	}
}

func TestConcurrentFinalizeRunsOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var rows strings.Builder
	rows.WriteString(csvHeader)
	for i := range 50000 {
		fmt.Fprintf(&rows, "2024-06-01T00:00:00Z,1,%d,50,1,D\n", i)
	}
	// Distinct timestamps so every row inserts.
	data := []byte(strings.ReplaceAll(rows.String(), "2024-06-01T00:00:00Z", "2024-06-01"))
	lines := strings.Split(string(data), "\n")
	var b strings.Builder
	b.WriteString(lines[0] + "\n")
	for i, l := range lines[1 : len(lines)-1] {
		b.WriteString(fmt.Sprintf("2024-06-01 %02d:%02d:%02d", i/3600, i/60%60, i%60) + strings.TrimPrefix(l, "2024-06-01") + "\n")
	}
	e.putChunk(t, "cf", "cf.csv", 0, 1, []byte(b.String()))

	codes := make([]int, 2)
	var wg sync.WaitGroup
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], _ = e.finalize(t, "cf", "cf.csv", 1, false)
		}()
	}
	wg.Wait()
	slices.Sort(codes)
	// One runs; the other finds it running (409) or, if it came after, finds nothing (404).
	if codes[0] != 200 || (codes[1] != 409 && codes[1] != 404) {
		t.Fatalf("concurrent finalizes: got %v, want one 200 and one 409/404", codes)
	}
	if code, p, _ := listBody(t, e, "vehicle_id=cf"); code != 200 || p.Count != 50000 {
		t.Errorf("rows: got %d, want 50000", p.Count)
	}
}
