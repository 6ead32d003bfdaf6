package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vehicle-data/vehicle-data/gen/client"
	"github.com/vehicle-data/vehicle-data/internal/config"
	"github.com/vehicle-data/vehicle-data/internal/ingest"
	"github.com/vehicle-data/vehicle-data/internal/records"
	"github.com/vehicle-data/vehicle-data/internal/sample"
	"github.com/vehicle-data/vehicle-data/internal/server"
	"github.com/vehicle-data/vehicle-data/internal/testdb"
	"github.com/vehicle-data/vehicle-data/internal/uploader"
)

func TestMain(m *testing.M) { testdb.Main(m) }

func noenv(string) string { return "" }

// startServer runs the real HTTP stack and counts the chunk posts it receives.
func startServer(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	return startServerWith(t, ingest.Options{})
}

// startServerWith is startServer with the ingest service's options.
func startServerWith(t *testing.T, opts ingest.Options) (string, *atomic.Int64) {
	t.Helper()
	pool := testdb.New(t)
	h := server.New(server.Options{
		Config:  config.Default(),
		Records: records.NewStore(pool, records.StoreOptions{}),
		Ingest:  ingest.New(pool, opts),
	})
	var chunks atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "upload_chunk") {
			chunks.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	return ts.URL, &chunks
}

func TestUploadInterruptedThenResumed(t *testing.T) {
	url, chunks := startServer(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "veh-42.csv")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := sample.Write(f, sample.Options{VehicleID: "veh-42", Rows: 20000, Seed: 7}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	info, _ := os.Stat(path)
	const chunkSize = 32 << 10
	total := (info.Size() + chunkSize - 1) / chunkSize
	if total < 10 {
		t.Fatalf("test file too small: %d chunks", total)
	}

	// First attempt: interrupted after a few chunks.
	ctx, cancel := context.WithCancel(t.Context())
	var once sync.Once
	var stored atomic.Int64
	_, err = uploader.UploadFile(ctx, path, uploader.Options{
		Server: url, ChunkSize: chunkSize, Parallel: 2,
		AfterChunk: func(int32) {
			if stored.Add(1) >= 4 {
				once.Do(cancel)
			}
		},
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted upload: got %v, want context.Canceled", err)
	}
	c, _ := client.NewClientWithResponses(url)
	st, err := c.GetUploadStatusWithResponse(t.Context(), &client.GetUploadStatusParams{VehicleId: "veh-42", FileName: "veh-42.csv"})
	if err != nil || st.JSON200 == nil {
		t.Fatalf("status after the interruption: %v %s", err, st.Body)
	}
	held := int64(len(st.JSON200.ReceivedChunks))
	if held == 0 || held >= total {
		t.Fatalf("after the interruption the server holds %d of %d chunks", held, total)
	}

	// The command resumes: only the missing chunks go out.
	chunks.Store(0)
	var stdout, stderr bytes.Buffer
	err = run(t.Context(), []string{"upload", "--server", url, "--chunk-size", "32KiB", path}, noenv, &stdout, &stderr)
	if err != nil {
		t.Fatalf("resume: %v\n%s", err, stderr.String())
	}
	if sent := chunks.Load(); sent != total-held {
		t.Errorf("resume sent %d chunks, want only the %d missing", sent, total-held)
	}
	if !strings.Contains(stdout.String(), "20000 rows received, 20000 inserted") {
		t.Errorf("summary: %q", stdout.String())
	}
	lr, err := c.ListVehicleDataWithResponse(t.Context(), &client.ListVehicleDataParams{VehicleId: ptr("veh-42")})
	if err != nil || lr.JSON200 == nil || lr.JSON200.Count != 20000 {
		t.Fatalf("stored rows: %v %s", err, lr.Body)
	}
}

func TestUploadFailureExitsWithDetail(t *testing.T) {
	url, _ := startServer(t)
	path := filepath.Join(t.TempDir(), "bad.csv")
	os.WriteFile(path, []byte("timestamp,speed,odometer,soc,elevation,shift_state\n2024-06-01,1,1,500,1,D\n"), 0o644)
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"upload", "--server", url, path}, noenv, &stdout, &stderr)
	if err == nil {
		t.Fatal("upload of an invalid file succeeded")
	}
	if out := stderr.String(); !strings.Contains(out, "422") || !strings.Contains(out, "soc") {
		t.Errorf("stderr should carry the server's detail and the bad row: %q", out)
	}
}

// The real server's 507 reaches the user with its detail and a hint, after one attempt.
func TestUploadOverQuotaExitsWithDetail(t *testing.T) {
	url, chunks := startServerWith(t, ingest.Options{MaxChunkBytes: 1 << 10, MaxUploadBytes: 2 << 10, MaxPendingUploadBytes: 2 << 10})
	// Another upload holds 600 of the 2048 bytes, so the file's second chunk does not fit.
	var form bytes.Buffer
	w := multipart.NewWriter(&form)
	for k, v := range map[string]string{"file_name": "other.csv", "chunk_index": "0", "total_chunks": "2", "vehicle_id": "other"} {
		w.WriteField(k, v)
	}
	part, _ := w.CreateFormFile("chunk", "other.csv")
	part.Write(bytes.Repeat([]byte("y"), 600))
	w.Close()
	resp, err := http.Post(url+"/api/v1/vehicle_data/upload_chunk/", w.FormDataContentType(), &form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("the other upload's chunk: %d", resp.StatusCode)
	}
	chunks.Store(0)

	path := filepath.Join(t.TempDir(), "big.csv")
	os.WriteFile(path, bytes.Repeat([]byte("x"), 1500), 0o644)
	var stdout, stderr bytes.Buffer
	err = run(t.Context(), []string{"upload", "--server", url, "--chunk-size", "1KiB", "--parallel", "1", path}, noenv, &stdout, &stderr)
	if err == nil {
		t.Fatal("upload over the quota succeeded")
	}
	for _, want := range []string{
		"upload_chunk 1: server answered 507 Insufficient Storage",
		"more than the limit of 2048 bytes (max-pending-upload-bytes)",
		"the server's storage for unfinalized uploads is full",
	} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr should contain %q:\n%s", want, stderr.String())
		}
	}
	if n := chunks.Load(); n != 2 {
		t.Errorf("%d chunk posts, want 2 (the one that fits, the one refused once)", n)
	}
}

func TestImportDir(t *testing.T) {
	url, _ := startServer(t)
	dir := t.TempDir()
	var out bytes.Buffer
	if err := run(t.Context(), []string{"sample", "--vehicles", "2", "--rows", "500", "--out", dir, "--seed", "3"}, noenv, &out, &out); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"import", "--server", url, dir}, noenv, &stdout, &stderr); err != nil {
		t.Fatalf("import: %v %s", err, stderr.String())
	}
	if n := strings.Count(stdout.String(), "500 inserted"); n != 2 {
		t.Errorf("import output: %q", stdout.String())
	}
}

func TestSampleIsDeterministic(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	for _, d := range []string{a, b} {
		var out bytes.Buffer
		if err := run(t.Context(), []string{"sample", "--vehicles", "1", "--rows", "100", "--out", d, "--seed", "9"}, noenv, &out, &out); err != nil {
			t.Fatal(err)
		}
	}
	fa, _ := filepath.Glob(filepath.Join(a, "*.csv"))
	fb, _ := filepath.Glob(filepath.Join(b, "*.csv"))
	if len(fa) != 1 || len(fb) != 1 || filepath.Base(fa[0]) != filepath.Base(fb[0]) {
		t.Fatalf("files: %v %v", fa, fb)
	}
	ba, _ := os.ReadFile(fa[0])
	bb, _ := os.ReadFile(fb[0])
	if !bytes.Equal(ba, bb) || !bytes.HasPrefix(ba, []byte("timestamp,speed,odometer,soc,elevation,shift_state\n")) {
		t.Error("the same seed wrote different files")
	}
}

func TestRunUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"bogus"}, {"migrate"}, {"upload"}, {"import"}, {"serve", "--max-chunk-bytes", "lots"}} {
		var out bytes.Buffer
		if err := run(t.Context(), args, noenv, &out, &out); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}

func ptr[T any](v T) *T { return &v }

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// served is a `vehicle-data serve` running in this process, as main runs it.
type served struct {
	addr   string
	logs   *lockedBuffer
	cancel context.CancelFunc // the signal
	done   chan error         // serve's result
}

// startServe runs serve with args over the environment env and waits until it listens. It
// is stopped when the test ends, if the test has not stopped it.
func startServe(t *testing.T, args []string, env map[string]string) *served {
	t.Helper()
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	s := &served{logs: &lockedBuffer{}, cancel: cancel, done: make(chan error, 1)}
	go func() {
		s.done <- run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...),
			func(k string) string { return env[k] }, io.Discard, s.logs)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(30 * time.Second):
			t.Errorf("serve did not stop within 30s of the signal")
		}
	})
	listening := regexp.MustCompile(`"msg":"serving","addr":"([^"]+)"`)
	for range 400 {
		if m := listening.FindStringSubmatch(s.logs.String()); m != nil {
			s.addr = m[1]
			return s
		}
		select {
		case err := <-s.done:
			s.done <- err
			t.Fatalf("serve stopped early: %v\n%s", err, s.logs.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("serve did not start within 20s:\n%s", s.logs.String())
	return nil
}

// serve migrates, answers, and on a signal (ctx cancelled) finishes in-flight requests and
// returns without error.
func TestServeMigratesAndShutsDownGracefully(t *testing.T) {
	dbURL := testdb.NewUnmigratedURL(t)
	srv := startServe(t, []string{"--shutdown-timeout", "10s",
		"--max-chunk-bytes", "1KiB", "--max-upload-bytes", "1KiB", "--max-pending-upload-bytes", "1KiB"},
		map[string]string{"DATABASE_URL": dbURL})
	addr, logs := srv.addr, srv.logs
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/readyz after start: %d (the schema should have been migrated on start)", resp.StatusCode)
	}
	// The upload quotas reach the service: one KiB fills both.
	c, err := client.NewClientWithResponses("http://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		file  string
		index int
		size  int
		want  int
	}{{"a.csv", 0, 1024, 200}, {"a.csv", 1, 1, 413}, {"b.csv", 0, 1, 507}} {
		var body bytes.Buffer
		w := multipart.NewWriter(&body)
		for k, v := range map[string]string{"file_name": tt.file, "chunk_index": fmt.Sprint(tt.index), "total_chunks": "2", "vehicle_id": "v"} {
			w.WriteField(k, v)
		}
		part, _ := w.CreateFormFile("chunk", tt.file)
		part.Write(bytes.Repeat([]byte("x"), tt.size))
		w.Close()
		r, err := c.UploadChunkWithBodyWithResponse(t.Context(), w.FormDataContentType(), &body)
		if err != nil {
			t.Fatalf("chunk %d of %s: %v", tt.index, tt.file, err)
		}
		if r.StatusCode() != tt.want || (tt.want != 200 && !strings.Contains(string(r.Body), "limit of 1024 bytes")) {
			t.Errorf("chunk %d of %s (%d bytes): %d %s; want %d naming the 1024-byte limit", tt.index, tt.file, tt.size, r.StatusCode(), r.Body, tt.want)
		}
	}
	if !strings.Contains(logs.String(), "no API tokens configured") {
		t.Errorf("no warning about the open server in the logs")
	}
	srv.cancel()
	select {
	case err := <-srv.done:
		srv.done <- err // for the cleanup
		if err != nil {
			t.Fatalf("serve returned %v on shutdown", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop within 15s of the signal")
	}
	if !strings.Contains(logs.String(), `"msg":"stopped"`) {
		t.Errorf("no shutdown log line:\n%s", logs.String())
	}
}

// A connection accepted before the listener closed gets its request served, even when the
// request comes after: a proxy sends on a connection it has just opened, and could not retry
// a POST that the replica hung up on. (net/http's Shutdown drops a request it reads after it
// began; serve closes the listener first and waits for such requests.)
func TestServeAnswersConnectionsAcceptedBeforeTheListenerCloses(t *testing.T) {
	srv := startServe(t, []string{"--drain-delay", "200ms", "--shutdown-timeout", "10s"},
		map[string]string{"DATABASE_URL": testdb.NewUnmigratedURL(t)})
	addr, logs, cancel := srv.addr, srv.logs, srv.cancel
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	cancel() // SIGTERM: the drain, then the listener closes
	closed := false
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			closed = true
			break
		}
		c.Close()
	}
	if !closed {
		t.Fatalf("the listener was still open 5s after the signal:\n%s", logs.String())
	}
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("a request on a connection accepted before the listener closed: %v (hung up on)", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !resp.Close {
		t.Errorf("answer: %d, Connection: close %v; want 200 and close", resp.StatusCode, resp.Close)
	}
	err = <-srv.done
	srv.done <- err // for the cleanup
	if err != nil {
		t.Fatalf("serve returned %v on shutdown", err)
	}
}

// An unreachable --data-dir is refused with a message naming the folder and the way out; only
// the default data folder moves by itself.
func TestServeRefusesUnreachableDataDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root runs the embedded PostgreSQL as another OS user, who may be unable to reach a folder")
	}
	home := t.TempDir()
	if err := os.Chmod(home, 0o700); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(home, "pg")
	err := run(t.Context(), []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dir}, noenv, io.Discard, io.Discard)
	if err == nil {
		t.Fatal("serve with an unreachable --data-dir: no error")
	}
	for _, want := range []string{dir, "cannot enter " + home, "(--data-dir or DATA_DIR)", "unset both"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q, want it to contain %q", err, want)
		}
	}
	t.Log(err)
}
