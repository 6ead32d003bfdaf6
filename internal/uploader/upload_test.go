package uploader

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vehicle-data/vehicle-data/gen/client"
)

// writeFile writes content to dir/name and returns its path.
func writeFile(t *testing.T, dir, name string, content []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// csvOf returns a CSV file of n rows: a header of 52 bytes, then 39 bytes a row.
func csvOf(n int) []byte {
	var b bytes.Buffer
	b.WriteString("timestamp,speed,odometer,soc,elevation,shift_state\n")
	for i := range n {
		fmt.Fprintf(&b, "2024-06-01T12:%02d:%02dZ,55,1234.5,80,10,D\n", i/60%60, i%60)
	}
	return b.Bytes()
}

// testOptions are options for fast tests against s.
func testOptions(s *fakeServer) Options {
	return Options{Server: s.URL, RetryBaseDelay: time.Millisecond}
}

// seq returns 0..n-1.
func seq(n int32) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(i)
	}
	return out
}

func TestChunkCount(t *testing.T) {
	tests := []struct {
		size, chunk, want int64
	}{
		{0, 4, 1},
		{1, 4, 1},
		{4, 4, 1},
		{5, 4, 2},
		{8, 4, 2},
		{9, 4, 3},
		{math.MaxInt64, 1 << 20, 1 << 43},
		{math.MaxInt64, math.MaxInt64, 1},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d/%d", tt.size, tt.chunk), func(t *testing.T) {
			if got := chunkCount(tt.size, tt.chunk); got != tt.want {
				t.Errorf("chunkCount(%d, %d) = %d, want %d", tt.size, tt.chunk, got, tt.want)
			}
		})
	}
}

func TestUploadFileChunking(t *testing.T) {
	const chunk = 4
	tests := []struct {
		name       string
		size       int
		wantChunks []int // length of each chunk
	}{
		{"empty", 0, []int{0}},
		{"one byte", 1, []int{1}},
		{"exactly one chunk", chunk, []int{chunk}},
		{"one byte over", chunk + 1, []int{chunk, 1}},
		{"several", 3*chunk + 2, []int{chunk, chunk, chunk, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFakeServer(t)
			content := bytes.Repeat([]byte("x"), tt.size)
			path := writeFile(t, t.TempDir(), "veh1.csv", content)
			opts := testOptions(s)
			opts.ChunkSize = chunk

			res, err := UploadFile(t.Context(), path, opts)
			if err != nil {
				t.Fatalf("UploadFile: %v", err)
			}
			if res.VehicleId != "veh1" || res.FileName != "veh1.csv" {
				t.Errorf("result for vehicle %q file %q, want veh1 and veh1.csv", res.VehicleId, res.FileName)
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			gotLens := make([]int, len(s.chunkLens))
			for i, n := range s.chunkLens {
				if int(i) >= len(gotLens) {
					t.Fatalf("chunk index %d out of range; lengths %v", i, s.chunkLens)
				}
				gotLens[i] = n
			}
			if !slices.Equal(gotLens, tt.wantChunks) {
				t.Errorf("chunk lengths %v, want %v", gotLens, tt.wantChunks)
			}
			if got := s.finalized[uploadKey{"veh1", "veh1.csv"}]; !bytes.Equal(got, content) {
				t.Errorf("server assembled %q, want %q", got, content)
			}
			if !s.lengthKnown {
				t.Error("a chunk request had no Content-Length")
			}
		})
	}
}

func TestUploadFileResume(t *testing.T) {
	content := csvOf(10) // 442 bytes: 4 chunks of 128
	const chunk = 128
	piece := func(i int) []byte { return content[i*chunk : min((i+1)*chunk, len(content))] }
	tests := []struct {
		name     string
		held     map[int32][]byte // what an earlier run left on the server
		heldOf   int32            // its total_chunks
		wantSent []int32
	}{
		{"missing chunks only", map[int32][]byte{0: piece(0), 2: piece(2)}, 4, []int32{1, 3}},
		{"all held: file may have changed, send all", map[int32][]byte{0: piece(0), 1: piece(1), 2: piece(2), 3: piece(3)}, 4, seq(4)},
		{"byte count differs: send all", map[int32][]byte{0: piece(0), 2: []byte("short")}, 4, seq(4)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFakeServer(t)
			for i, data := range tt.held {
				s.put("veh1", "veh1.csv", tt.heldOf, i, data)
			}
			path := writeFile(t, t.TempDir(), "veh1.csv", content)
			opts := testOptions(s)
			opts.ChunkSize = chunk

			if _, err := UploadFile(t.Context(), path, opts); err != nil {
				t.Fatalf("UploadFile: %v", err)
			}
			sent, _, _ := s.snapshot()
			if !slices.Equal(sent, tt.wantSent) {
				t.Errorf("sent chunks %v, want %v", sent, tt.wantSent)
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if got := s.finalized[uploadKey{"veh1", "veh1.csv"}]; !bytes.Equal(got, content) {
				t.Errorf("server assembled %q, want %q", got, content)
			}
		})
	}
}

func TestUploadFileResumeWithOtherChunkSize(t *testing.T) {
	s := newFakeServer(t)
	s.put("veh1", "veh1.csv", 5, 0, []byte("header"))
	path := writeFile(t, t.TempDir(), "veh1.csv", csvOf(3))
	opts := testOptions(s) // 1 MiB chunks: 1 chunk, the server holds 5

	_, err := UploadFile(t.Context(), path, opts)
	if err == nil || !strings.Contains(err.Error(), "--chunk-size") || !strings.Contains(err.Error(), "5 chunks") {
		t.Errorf("error %v, want one that names the server's 5 chunks and suggests --chunk-size", err)
	}
	if sent, _, _ := s.snapshot(); len(sent) != 0 {
		t.Errorf("sent chunks %v, want none", sent)
	}
}

// An upload interrupted by its context resumes where it stopped.
func TestUploadFileInterruptAndResume(t *testing.T) {
	s := newFakeServer(t)
	content := csvOf(20) // 832 bytes: 9 chunks of 100
	path := writeFile(t, t.TempDir(), "veh1.csv", content)
	opts := testOptions(s)
	opts.ChunkSize = 100
	opts.Parallel = 1 // so exactly 3 chunks are stored before the cancel takes effect

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stored atomic.Int32
	first := opts
	first.AfterChunk = func(int32) {
		if stored.Add(1) == 3 {
			cancel()
		}
	}
	_, err := UploadFile(ctx, path, first)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted upload: error %v, want context.Canceled", err)
	}
	sentFirst, _, _ := s.snapshot()
	if !slices.Equal(sentFirst, []int32{0, 1, 2}) {
		t.Fatalf("first run stored %v, want [0 1 2]", sentFirst)
	}

	res, err := UploadFile(t.Context(), path, opts)
	if err != nil {
		t.Fatalf("resumed upload: %v", err)
	}
	sentAll, _, _ := s.snapshot()
	if !slices.Equal(sentAll, seq(9)) {
		t.Errorf("both runs stored %v, want each of 0..8 once", sentAll)
	}
	if res.RowsInserted != 20 {
		t.Errorf("rows inserted %d, want 20", res.RowsInserted)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if got := s.finalized[uploadKey{"veh1", "veh1.csv"}]; !bytes.Equal(got, content) {
		t.Errorf("server assembled %q, want the file", got)
	}
}

// failingTransport fails the first n requests with a network error.
type failingTransport struct {
	n    atomic.Int32
	next http.RoundTripper
}

func (f *failingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if f.n.Add(-1) >= 0 {
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, errors.New("connection reset by fake")
	}
	return f.next.RoundTrip(r)
}

func TestUploadFileRetries(t *testing.T) {
	tests := []struct {
		name         string
		failChunk    func(index int32, attempt int) int
		netFailures  int32
		retries      int
		wantAttempts int // requests for chunk 0
		wantErr      string
	}{
		{name: "503 twice then success", failChunk: failFirst(http.StatusServiceUnavailable, 2), wantAttempts: 3},
		{name: "429 then success", failChunk: failFirst(http.StatusTooManyRequests, 1), wantAttempts: 2},
		{name: "network errors then success", netFailures: 2, wantAttempts: 1},
		{name: "400 is not retried", failChunk: failFirst(http.StatusBadRequest, 99), wantAttempts: 1,
			wantErr: "upload_chunk 0: server answered 400 Bad Request: injected 400 for chunk 0"},
		{name: "413 is not retried", failChunk: failFirst(http.StatusRequestEntityTooLarge, 99), wantAttempts: 1,
			wantErr: "use a smaller --chunk-size"},
		{name: "503 until the retries run out", failChunk: failFirst(http.StatusServiceUnavailable, 99), retries: 2, wantAttempts: 3,
			wantErr: "injected 503 for chunk 0 (gave up after 3 attempts)"},
		{name: "negative retries mean none", failChunk: failFirst(http.StatusServiceUnavailable, 99), retries: -1, wantAttempts: 1,
			wantErr: "(gave up after 1 attempts)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFakeServer(t)
			s.failChunk = tt.failChunk
			path := writeFile(t, t.TempDir(), "veh1.csv", csvOf(2))
			opts := testOptions(s)
			opts.Retries = tt.retries
			transport := &failingTransport{next: http.DefaultTransport}
			transport.n.Store(tt.netFailures)
			opts.HTTPClient = &http.Client{Transport: transport}

			_, err := UploadFile(t.Context(), path, opts)
			_, attempts, _ := s.snapshot()
			if got := attempts[0]; got != tt.wantAttempts {
				t.Errorf("chunk 0 requested %d times, want %d", got, tt.wantAttempts)
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("UploadFile: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// failFirst answers status to the first n attempts of every chunk.
func failFirst(status, n int) func(int32, int) int {
	return func(_ int32, attempt int) int {
		if attempt <= n {
			return status
		}
		return 0
	}
}

func TestUploadFileFinalizeErrors(t *testing.T) {
	soc := "soc"
	rows := make([]client.RowError, 7)
	for i := range rows {
		rows[i] = client.RowError{Line: int64(i + 2), Column: &soc, Value: "101", Message: "soc must be an integer between 0 and 100"}
	}
	rows[1].Column, rows[1].Value, rows[1].Message = nil, "", "row has 5 cells, header has 6"
	tests := []struct {
		name       string
		status     int
		body       any
		wantStatus int
		wantErr    []string
	}{
		{
			name:   "422 lists the first rows",
			status: http.StatusUnprocessableEntity,
			body:   client.RowsInvalid{Detail: "7 rows are invalid; nothing was inserted", RowsInvalid: 7, Errors: rows},
			wantErr: []string{
				"finalize_upload: server answered 422 Unprocessable Entity: 7 rows are invalid; nothing was inserted\n" +
					"  line 2, column soc: soc must be an integer between 0 and 100 (value \"101\")\n" +
					"  line 3: row has 5 cells, header has 6\n",
				"  line 6, column soc:",
				"  ... and 2 more invalid rows\n",
				"--skip-invalid-rows",
			},
		},
		{
			name:    "409 lists the missing chunks",
			status:  http.StatusConflict,
			body:    client.UploadConflict{Detail: "upload is missing 2 of 3 chunks", MissingChunks: &[]int32{0, 2}},
			wantErr: []string{"409 Conflict: upload is missing 2 of 3 chunks\n  missing chunks: [0 2]"},
		},
		{
			name:    "400 names the column",
			status:  http.StatusBadRequest,
			body:    map[string]string{"detail": "missing column: shift_state"},
			wantErr: []string{"400 Bad Request: missing column: shift_state"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFakeServer(t)
			s.finalizeHook = func(w http.ResponseWriter, _ client.FinalizeRequest) bool {
				writeJSON(w, tt.status, tt.body)
				return true
			}
			path := writeFile(t, t.TempDir(), "veh1.csv", csvOf(7))

			res, err := UploadFile(t.Context(), path, testOptions(s))
			if res != nil {
				t.Errorf("result %+v, want nil", res)
			}
			var apiErr *APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != tt.status {
				t.Fatalf("error %v, want an *APIError with status %d", err, tt.status)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error\n%s\nwant it to contain\n%s", err, want)
				}
			}
		})
	}
}

func TestUploadFileAuth(t *testing.T) {
	tests := []struct {
		name, token, want string
	}{
		{"no token, no header", "", ""},
		{"token as bearer", "s3cret", "Bearer s3cret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFakeServer(t)
			path := writeFile(t, t.TempDir(), "veh1.csv", csvOf(30))
			opts := testOptions(s)
			opts.Token = tt.token
			opts.ChunkSize = 512

			if _, err := UploadFile(t.Context(), path, opts); err != nil {
				t.Fatalf("UploadFile: %v", err)
			}
			_, _, auth := s.snapshot()
			if len(auth) < 4 { // status, 3 chunks, finalize
				t.Fatalf("server saw %d requests, want at least 4", len(auth))
			}
			for i, got := range auth {
				if got != tt.want {
					t.Errorf("request %d: Authorization %q, want %q", i, got, tt.want)
				}
			}
		})
	}
}

func TestUploadFileSkipInvalid(t *testing.T) {
	for _, skip := range []bool{false, true} {
		t.Run(fmt.Sprint(skip), func(t *testing.T) {
			s := newFakeServer(t)
			var got *bool
			s.finalizeHook = func(_ http.ResponseWriter, req client.FinalizeRequest) bool {
				got = req.SkipInvalidRows
				return false
			}
			path := writeFile(t, t.TempDir(), "veh1.csv", csvOf(1))
			opts := testOptions(s)
			opts.SkipInvalid = skip

			if _, err := UploadFile(t.Context(), path, opts); err != nil {
				t.Fatalf("UploadFile: %v", err)
			}
			if got == nil || *got != skip {
				t.Errorf("finalize sent skip_invalid_rows %v, want %v", got, skip)
			}
		})
	}
}

func TestUploadFileParallelBounded(t *testing.T) {
	for _, parallel := range []int{1, 3} {
		t.Run(fmt.Sprint(parallel), func(t *testing.T) {
			s := newFakeServer(t)
			// Each chunk request waits until `parallel` are in flight (or a timeout), so
			// the maximum reaches the bound whenever the uploader allows it.
			s.inChunk = func() {
				deadline := time.Now().Add(2 * time.Second)
				for time.Now().Before(deadline) {
					s.mu.Lock()
					n := s.inflight
					s.mu.Unlock()
					if n >= parallel {
						break
					}
					time.Sleep(time.Millisecond)
				}
				time.Sleep(5 * time.Millisecond)
			}
			path := writeFile(t, t.TempDir(), "veh1.csv", csvOf(40))
			opts := testOptions(s)
			opts.ChunkSize = 128 // 13 chunks
			opts.Parallel = parallel

			if _, err := UploadFile(t.Context(), path, opts); err != nil {
				t.Fatalf("UploadFile: %v", err)
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.maxInflight != parallel {
				t.Errorf("at most %d chunks in flight, want %d", s.maxInflight, parallel)
			}
		})
	}
}

func TestUploadFileProgress(t *testing.T) {
	s := newFakeServer(t)
	path := writeFile(t, t.TempDir(), "veh1.csv", csvOf(40))
	var out bytes.Buffer
	opts := testOptions(s)
	opts.ChunkSize = 128
	opts.Progress = &out

	if _, err := UploadFile(t.Context(), path, opts); err != nil {
		t.Fatalf("UploadFile: %v", err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) < 2 || lines[0] != "veh1.csv: sending 1.6 KiB" || !strings.HasPrefix(lines[len(lines)-1], "veh1.csv: 1.6 KiB sent in ") {
		t.Errorf("progress output\n%s\nwant a first line announcing 1.6 KiB and a last one saying it was sent", out.String())
	}
}

func TestUploadFileBadInput(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "veh1.csv", csvOf(1))
	tests := []struct {
		name    string
		path    string
		opts    Options
		wantErr string
	}{
		{"no server", path, Options{}, "no server URL"},
		{"relative server", path, Options{Server: "localhost:8080"}, "absolute http or https URL"},
		{"negative chunk size", path, Options{Server: "http://x", ChunkSize: -1}, "chunk size must be positive"},
		{"negative parallel", path, Options{Server: "http://x", Parallel: -2}, "parallel must be positive"},
		{"no vehicle id in name", writeFile(t, dir, ".csv", nil), Options{Server: "http://x"}, "give one explicitly"},
		{"vehicle id too long", path, Options{Server: "http://x", VehicleID: strings.Repeat("v", 101)}, "at most 100"},
		{"missing file", filepath.Join(dir, "nope.csv"), Options{Server: "http://x"}, "no such file"},
		{"directory", dir, Options{Server: "http://x", VehicleID: "v"}, "not a regular file"},
		{"too many chunks", sparseFile(t, dir, 1<<31+1), Options{Server: "http://x", ChunkSize: 1}, "more than the API allows"},
		{"huge chunk size is one chunk", path, Options{Server: "http://x", ChunkSize: 1 << 62}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			cancel() // nothing here may need the network
			_, err := UploadFile(ctx, tt.path, tt.opts)
			if tt.wantErr == "" {
				if !errors.Is(err, context.Canceled) {
					t.Errorf("error %v, want it to get as far as the (cancelled) request", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// sparseFile makes a file of size bytes that takes no room on disk.
func sparseFile(t *testing.T, dir string, size int64) string {
	t.Helper()
	path := writeFile(t, dir, "sparse.csv", nil)
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestUploadDir(t *testing.T) {
	s := newFakeServer(t)
	s.finalizeHook = func(w http.ResponseWriter, req client.FinalizeRequest) bool {
		if req.VehicleId != "bad" {
			return false
		}
		problem(w, http.StatusBadRequest, "missing column: soc")
		return true
	}
	dir := t.TempDir()
	writeFile(t, dir, "veh2.csv", csvOf(2))
	writeFile(t, dir, "bad.csv", csvOf(1))
	writeFile(t, dir, "veh1.CSV", csvOf(3))
	writeFile(t, dir, "notes.txt", []byte("not a csv"))
	if err := os.Mkdir(filepath.Join(dir, "sub.csv"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "sub.csv"), "nested.csv", csvOf(1))

	results, err := UploadDir(t.Context(), dir, testOptions(s))
	if err == nil || !strings.Contains(err.Error(), "1 of 3 files failed: bad.csv") {
		t.Errorf("error %v, want one saying bad.csv of 3 files failed", err)
	}
	type outcome struct {
		file, vehicle string
		inserted      int64
		failed        bool
	}
	var got []outcome
	for _, r := range results {
		o := outcome{file: filepath.Base(r.Path), vehicle: r.VehicleID, failed: r.Err != nil}
		if r.Result != nil {
			o.inserted = r.Result.RowsInserted
		}
		got = append(got, o)
	}
	want := []outcome{
		{"bad.csv", "bad", 0, true},
		{"veh1.CSV", "veh1", 3, false},
		{"veh2.csv", "veh2", 2, false},
	}
	if !slices.Equal(got, want) {
		t.Errorf("results %+v, want %+v", got, want)
	}
}

func TestUploadDirCancelled(t *testing.T) {
	s := newFakeServer(t)
	dir := t.TempDir()
	writeFile(t, dir, "veh1.csv", csvOf(1))
	writeFile(t, dir, "veh2.csv", csvOf(1))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()

	results, err := UploadDir(ctx, dir, testOptions(s))
	if !errors.Is(err, context.Canceled) || len(results) != 1 || results[0].Err == nil {
		t.Errorf("UploadDir = %d results, %v; want the first file failed and context.Canceled", len(results), err)
	}
}

func TestUploadDirEmpty(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "notes.txt", nil)
	results, err := UploadDir(t.Context(), dir, Options{Server: "http://x"})
	if err == nil || !strings.Contains(err.Error(), "no .csv files") || results != nil {
		t.Errorf("UploadDir = %v, %v; want no results and an error saying there are no .csv files", results, err)
	}
}

func TestIsTerminal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tests := []struct {
		name string
		w    io.Writer
	}{
		{"buffer", &bytes.Buffer{}},
		{"regular file", f},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if IsTerminal(tt.w) {
				t.Error("IsTerminal = true, want false")
			}
		})
	}
}

// A chunk refused for a quota is reported with the server's detail and a hint naming the
// limit, and neither it nor any other request is sent again.
func TestUploadFileQuotaRefused(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		detail   string
		wantHint string
	}{
		{"per upload", http.StatusRequestEntityTooLarge,
			`upload "veh1.csv" of vehicle "veh1" would hold 2147483700 bytes, more than the limit of 2147483648 bytes per upload (max-upload-bytes)`,
			"over the server's per-upload limit: split it into smaller files"},
		{"chunk", http.StatusRequestEntityTooLarge, "chunk is larger than the limit of 100 bytes",
			"the chunk of 100 bytes is over the server's limit: use a smaller --chunk-size"},
		{"all uploads", http.StatusInsufficientStorage,
			`chunk 0 of upload "veh1.csv" of vehicle "veh1" would bring all unfinalized uploads to 8589934600 bytes, more than the limit of 8589934592 bytes (max-pending-upload-bytes)`,
			"the server's storage for unfinalized uploads is full: finalize or wait for old uploads to expire"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var requests, chunks atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
				if strings.Contains(r.URL.Path, "upload_chunk") {
					chunks.Add(1)
					w.Header().Set("Retry-After", "1") // must not tempt the client
					problem(w, tt.status, tt.detail)
					return
				}
				problem(w, http.StatusNotFound, "no upload") // upload_status: a new upload
			}))
			t.Cleanup(srv.Close)
			path := writeFile(t, t.TempDir(), "veh1.csv", csvOf(5)) // 247 bytes: 3 chunks of 100
			opts := Options{Server: srv.URL, ChunkSize: 100, Parallel: 1, RetryBaseDelay: time.Millisecond}

			_, err := UploadFile(t.Context(), path, opts)
			var apiErr *APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != tt.status {
				t.Fatalf("error %v, want an *APIError with status %d", err, tt.status)
			}
			if got := chunks.Load(); got != 1 {
				t.Errorf("%d chunk requests, want 1 (no retry, no further chunk)", got)
			}
			if got := requests.Load(); got != 2 {
				t.Errorf("%d requests in all, want 2 (upload_status, one chunk)", got)
			}
			for _, want := range []string{fmt.Sprintf("upload_chunk 0: server answered %d %s: %s", tt.status, http.StatusText(tt.status), tt.detail), tt.wantHint} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error\n%s\nwant it to contain\n%s", err, want)
				}
			}
		})
	}
}
