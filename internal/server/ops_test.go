package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/vehicle-data/vehicle-data/internal/config"
	"github.com/vehicle-data/vehicle-data/internal/docs"
	"github.com/vehicle-data/vehicle-data/internal/ingest"

	"github.com/vehicle-data/vehicle-data/internal/metrics"
	"github.com/vehicle-data/vehicle-data/internal/records"
	"github.com/vehicle-data/vehicle-data/internal/server"
	"github.com/vehicle-data/vehicle-data/internal/testdb"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// opsServer is a server with a JSON log captured, real metrics and the docs handler.
func opsServer(t *testing.T, mutate func(*config.Config)) (*httptest.Server, *syncBuffer) {
	t.Helper()
	pool := testdb.New(t)
	cfg := config.Default()
	if mutate != nil {
		mutate(&cfg)
	}
	logs := &syncBuffer{}
	logger := slog.New(server.LogHandler{Handler: slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})})
	m := metrics.New(map[string]*pgxpool.Pool{"interactive": pool})
	h := server.New(server.Options{
		Config: cfg, Logger: logger, Metrics: m, Docs: docs.Handler(),
		Records: records.NewStore(pool, records.StoreOptions{}),
		Ingest:  ingest.New(pool, ingest.Options{MaxChunkBytes: cfg.MaxChunkBytes, Metrics: m}),
	})
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts, logs
}

func get(t *testing.T, url string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestRequestIDOnEveryLogLine(t *testing.T) {
	t.Parallel()
	ts, logs := opsServer(t, nil)
	resp, _ := get(t, ts.URL+"/api/v1/vehicle_data/?page=0", map[string]string{"X-Request-ID": "req-123"})
	if resp.StatusCode != 400 || resp.Header.Get("X-Request-ID") != "req-123" {
		t.Fatalf("got %d, X-Request-ID %q", resp.StatusCode, resp.Header.Get("X-Request-ID"))
	}
	resp, _ = get(t, ts.URL+"/healthz", map[string]string{"X-Request-ID": "bad id; with spaces"})
	if id := resp.Header.Get("X-Request-ID"); id == "" || strings.ContainsAny(id, " \n") {
		t.Errorf("an unsafe client request id must be replaced, got %q", id)
	}
	var lines int
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if m["path"] == "/api/v1/vehicle_data/" || m["msg"] == "request rejected" {
			lines++
			if m["request_id"] != "req-123" {
				t.Errorf("log line without the request id: %s", line)
			}
		}
	}
	if lines < 2 {
		t.Errorf("want the rejection and the access log line for the request, got %d lines:\n%s", lines, logs.String())
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	ts, _ := opsServer(t, nil)
	get(t, ts.URL+"/api/v1/vehicle_data/", nil)
	get(t, ts.URL+"/api/v1/vehicle_data/123/", nil)
	e := &env{URL: ts.URL}
	e.putChunk(t, "m", "m.csv", 0, 1, []byte(csvHeader+"2024-06-01,1,1,1,1,D\n"))
	e.finalize(t, "m", "m.csv", 1, false)
	get(t, ts.URL+"/api/v1/vehicle_data/export/?export=ndjson", nil)

	resp, body := get(t, ts.URL+"/metrics", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	for _, want := range []string{
		`vehicle_data_http_requests_total{method="GET",route="/api/v1/vehicle_data/",status="200"} 1`,
		`vehicle_data_http_requests_total{method="GET",route="/api/v1/vehicle_data/:id/",status="404"} 1`,
		`vehicle_data_http_request_duration_seconds_bucket{method="GET",route="/api/v1/vehicle_data/"`,
		`vehicle_data_rows_ingested_total 1`,
		`vehicle_data_upload_chunk_bytes_total 72`,
		`vehicle_data_rows_exported_total{format="ndjson"} 1`,
		`vehicle_data_db_pool_max_connections`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestCORS(t *testing.T) {
	t.Parallel()
	ts, _ := opsServer(t, func(c *config.Config) { c.CORSOrigins = []string{"https://dash.example"} })
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodOptions, ts.URL+"/api/v1/vehicle_data/", nil)
	req.Header.Set("Origin", "https://dash.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Access-Control-Allow-Origin") != "https://dash.example" {
		t.Errorf("preflight from an allowed origin: %d %v", resp.StatusCode, resp.Header)
	}
	r2, _ := get(t, ts.URL+"/api/v1/vehicle_data/", map[string]string{"Origin": "https://evil.example"})
	if r2.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("a foreign origin was allowed: %v", r2.Header)
	}
	// Without configured origins no CORS header is sent at all.
	ts2, _ := opsServer(t, nil)
	r3, _ := get(t, ts2.URL+"/api/v1/vehicle_data/", map[string]string{"Origin": "https://dash.example"})
	if r3.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("CORS is on by default: %v", r3.Header)
	}
}

func TestBodyLimits(t *testing.T) {
	t.Parallel()
	ts, _ := opsServer(t, func(c *config.Config) { c.MaxChunkBytes = 1 << 10 })
	big := bytes.Repeat([]byte(" "), 2<<20)
	resp, err := http.Post(ts.URL+"/api/v1/vehicle_data/", "application/json", bytes.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Errorf("2 MiB JSON body: got %d %s", resp.StatusCode, b)
	}
	// The upload route allows a chunk plus form overhead, not more.
	resp, err = http.Post(ts.URL+"/api/v1/vehicle_data/upload_chunk/", "multipart/form-data; boundary=x", bytes.NewReader(append(big, big...)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Errorf("4 MiB upload body with a 1 KiB chunk limit: got %d %s", resp.StatusCode, b)
	}
}

func TestDocsServedOffline(t *testing.T) {
	t.Parallel()
	ts, _ := opsServer(t, nil)
	resp, body := get(t, ts.URL+"/docs", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "/openapi.yaml") {
		t.Fatalf("/docs: %d %.300s", resp.StatusCode, body)
	}
	if strings.Contains(body, "://") && (strings.Contains(body, "cdn") || strings.Contains(body, "unpkg")) {
		t.Errorf("/docs refers to a CDN: %.500s", body)
	}
}
