package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vehicle-data/vehicle-data/gen/client"
	"github.com/vehicle-data/vehicle-data/internal/config"
	"github.com/vehicle-data/vehicle-data/internal/database"
	"github.com/vehicle-data/vehicle-data/internal/ingest"
	"github.com/vehicle-data/vehicle-data/internal/records"
	"github.com/vehicle-data/vehicle-data/internal/server"
	"github.com/vehicle-data/vehicle-data/internal/testdb"
)

// newPooledEnv starts the server as serve does: a pool per kind of work (database.OpenPools)
// and the limits of cfg.Limits, over a fresh database.
func newPooledEnv(t *testing.T, mutate func(*config.Limits)) (*env, *database.Pools) {
	t.Helper()
	cfg := config.Default()
	mutate(&cfg.Limits)
	l := cfg.Limits
	pools, err := database.OpenPools(t.Context(), testdb.NewURL(t), database.PoolSizes{
		Interactive: l.DBConns, Sorts: l.DBSortConns, Export: l.MaxExports, Ingest: 2*l.MaxFinalizes + 1,
		StatementTimeout: l.StatementTimeout, LockTimeout: l.LockTimeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pools.Close)
	h := server.New(server.Options{
		Config:  cfg,
		Records: records.NewStore(pools.Interactive, records.StoreOptions{SortPool: pools.Sorts, ExportPool: pools.Export, AcquireTimeout: l.AcquireTimeout}),
		Ingest: ingest.New(pools.Interactive, ingest.Options{
			MaxChunkBytes: cfg.MaxChunkBytes, FinalizePool: pools.Ingest, AcquireTimeout: l.AcquireTimeout,
		}),
		Ready: database.NewReadiness(pools.Probe).Check,
	})
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	c, err := client.NewClientWithResponses(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	// Pool is for the tests' own SQL: the ingest pool has no statement timeout.
	return &env{URL: ts.URL, Client: c, Pool: pools.Ingest}, pools
}

// seedBulk inserts n samples of vehicle "bulk", one a second: enough for an export larger
// than the socket buffers between a server and a client that does not read.
func seedBulk(t *testing.T, e *env, n int) {
	t.Helper()
	_, err := e.Pool.Exec(t.Context(), `INSERT INTO samples (vehicle_key, timestamp, speed, odometer, soc, elevation, shift_state)
		SELECT (SELECT vehicle_key_for('bulk')), timestamp '2024-01-01' + make_interval(secs => g), g % 120, g, g % 101, g % 500, 'D'
		FROM generate_series(1, $1::int) g`, n)
	if err != nil {
		t.Fatal(err)
	}
	// As autovacuum would soon: index-only scans need the visibility map.
	if _, err := e.Pool.Exec(t.Context(), "VACUUM ANALYZE samples"); err != nil {
		t.Fatal(err)
	}
}

// stalledDownload sends a GET, reads the status line (so the download holds its slot when it
// returns) and then nothing more, with a tiny receive buffer so the server's writes block
// soon. Closing the returned conn ends it.
func stalledDownload(t *testing.T, e *env, path string) net.Conn {
	t.Helper()
	u, _ := url.Parse(e.URL)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.(*net.TCPConn).SetReadBuffer(4096)
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, u.Host)
	// Only a guard against a hang: a workbook's status line waits for the whole workbook, which
	// took over 30 s for 150,000 rows in CI with the other packages' tests on the same 2 cores.
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Minute))
	line := make([]byte, len("HTTP/1.1 200"))
	if _, err := io.ReadFull(conn, line); err != nil || string(line) != "HTTP/1.1 200" {
		t.Fatalf("stalled download of %s: %q %v", path, line, err)
	}
	return conn
}

// wantBusy checks a 503 at a limit: Retry-After, and a detail naming the setting.
func wantBusy(t *testing.T, status int, h http.Header, body []byte, setting string) {
	t.Helper()
	if status != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503: %s", status, body)
	}
	if h.Get("Retry-After") == "" {
		t.Errorf("503 without Retry-After: %v", h)
	}
	if p := problem(t, body); !strings.Contains(p.Detail, setting) {
		t.Errorf("detail %q does not name %s", p.Detail, setting)
	}
}

// Slow export clients take export slots and export connections only: every short request
// keeps answering at once, a further export is a fast 503 naming the limit, and a client that
// stops reading is dropped after the stall timeout, freeing its slot.
func TestExportsNeverHoldUpShortRequests(t *testing.T) {
	e, _ := newPooledEnv(t, func(l *config.Limits) {
		l.MaxExports, l.MaxXLSXExports, l.DBConns = 2, 1, 2
		l.ExportStall = 4 * time.Second
	})
	seedBulk(t, e, 300_000) // about 20 MB of CSV
	short := e.seed(t, rec("short", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), nil, 50, nil))[0]

	started := time.Now()
	for range 2 {
		stalledDownload(t, e, "/api/v1/vehicle_data/export/?vehicle_id=bulk")
	}
	status, h, body := e.do(t, "GET", "/api/v1/vehicle_data/export/?vehicle_id=short&export=json", "", nil)
	wantBusy(t, status, h, body, "max-exports")

	for _, path := range []string{
		"/api/v1/vehicle_data/?vehicle_id=bulk&page_size=10",
		"/api/v1/vehicle_data/?vehicle_id=bulk&ordering=-odometer&page=2",
		fmt.Sprintf("/api/v1/vehicle_data/%d/", short.Id),
		"/api/v1/vehicles/",
		"/api/v1/vehicles/bulk/series/?max_points=100",
		"/healthz", "/readyz",
	} {
		t0 := time.Now()
		status, _, body := e.do(t, "GET", path, "", nil)
		if d := time.Since(t0); status != http.StatusOK || d > time.Second {
			t.Errorf("GET %s during two stalled exports: %d in %v: %.200s", path, status, d, body)
		}
	}

	// The stalled clients are dropped after about ExportStall; their slots come back.
	waitFor(t, 15*time.Second, func() bool {
		status, _, _ := e.do(t, "GET", "/api/v1/vehicle_data/export/?vehicle_id=short", "", nil)
		return status == http.StatusOK
	})
	if d := time.Since(started); d < 4*time.Second {
		t.Errorf("the stalled exports were dropped after %v, before the stall timeout", d)
	}
}

// The XLSX gate is within the export gate: a second workbook is refused while CSV still flows.
func TestXLSXLimit(t *testing.T) {
	e, _ := newPooledEnv(t, func(l *config.Limits) { l.MaxExports, l.MaxXLSXExports = 3, 1 })
	seedBulk(t, e, 150_000)
	conn := stalledDownload(t, e, "/api/v1/vehicle_data/export/?vehicle_id=bulk&export=xlsx")
	status, h, body := e.do(t, "GET", "/api/v1/vehicle_data/export/?vehicle_id=nobody&export=xlsx", "", nil)
	wantBusy(t, status, h, body, "max-xlsx-exports")
	if status, _, body := e.do(t, "GET", "/api/v1/vehicle_data/export/?vehicle_id=nobody&export=csv", "", nil); status != http.StatusOK {
		t.Errorf("CSV export beside a workbook: %d %s", status, body)
	}
	conn.Close()
	waitFor(t, 10*time.Second, func() bool {
		status, _, _ := e.do(t, "GET", "/api/v1/vehicle_data/export/?vehicle_id=nobody&export=xlsx", "", nil)
		return status == http.StatusOK
	})
}

// A short request that finds every interactive connection taken waits AcquireTimeout, then
// gets a 503 naming db-conns; it never waits longer.
func TestInteractiveConnectionsFull(t *testing.T) {
	e, pools := newPooledEnv(t, func(l *config.Limits) { l.DBConns, l.AcquireTimeout = 1, 300*time.Millisecond })
	conn, err := pools.Interactive.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	status, h, body := e.do(t, "GET", "/api/v1/vehicles/", "", nil)
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("answer after %v, want about the acquire timeout", d)
	}
	wantBusy(t, status, h, body, "db-conns")
	// The probe has its own connection: still ready.
	if status, _, body := e.do(t, "GET", "/readyz", "", nil); status != http.StatusOK {
		t.Errorf("readyz with the interactive pool full: %d %s", status, body)
	}
	conn.Release()
	if status, _, body := e.do(t, "GET", "/api/v1/vehicles/", "", nil); status != http.StatusOK {
		t.Errorf("after release: %d %s", status, body)
	}
}

// A short query past the statement timeout is a 503 naming it, not a 500 or a hang.
func TestStatementTimeout(t *testing.T) {
	e, _ := newPooledEnv(t, func(l *config.Limits) { l.StatementTimeout = 5 * time.Millisecond })
	seedBulk(t, e, 200_000)
	// No index serves soc: the page query sorts 200k rows, far past 5 ms.
	status, h, body := e.do(t, "GET", "/api/v1/vehicle_data/?vehicle_id=bulk&ordering=soc&page=50", "", nil)
	wantBusy(t, status, h, body, "statement-timeout")
}

// A chunk for an upload a finalize holds waits at most the lock timeout, then a 503.
func TestChunkWaitsForFinalizeAtMostLockTimeout(t *testing.T) {
	e, pools := newPooledEnv(t, func(l *config.Limits) { l.LockTimeout = 300 * time.Millisecond })
	if status, body := e.putChunk(t, "v", "f.csv", 0, 2, []byte("timestamp,speed,odometer,soc,elevation,shift_state\n")); status != http.StatusOK {
		t.Fatalf("first chunk: %d %s", status, body)
	}
	// Hold the upload's row lock the way a running finalize does.
	tx, err := pools.Ingest.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.WithoutCancel(t.Context()))
	if _, err := tx.Exec(t.Context(), "SELECT 1 FROM uploads WHERE vehicle_id = 'v' AND file_name = 'f.csv' FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	form, body := chunkForm(t, []byte("2024-01-01T00:00:00Z,1,1,1,1,D\n"), map[string]string{
		"vehicle_id": "v", "file_name": "f.csv", "chunk_index": "1", "total_chunks": "2",
	})
	status, h, resp := e.do(t, "POST", "/api/v1/vehicle_data/upload_chunk/", form, body)
	if d := time.Since(t0); d > 3*time.Second {
		t.Errorf("chunk answered after %v, want about the lock timeout", d)
	}
	wantBusy(t, status, h, resp, "lock timeout")
}

// A finalize finding every slot taken waits up to the acquire timeout for one: a small upload
// that arrives while another finalizes gets its turn, and one that would wait longer gets a 503
// naming max-finalizes.
func TestFinalizeWaitsForASlot(t *testing.T) {
	const wait = 500 * time.Millisecond
	e, pools := newPooledEnv(t, func(l *config.Limits) { l.MaxFinalizes = 1; l.AcquireTimeout = wait })
	for _, v := range []string{"a", "b", "c"} {
		if status, body := e.putChunk(t, v, "f.csv", 0, 1, []byte(csvHeader+"2024-01-01T00:00:00Z,1,1,1,1,D\n")); status != http.StatusOK {
			t.Fatalf("chunk of %s: %d %s", v, status, body)
		}
	}
	// Hold a's finalize inside its slot: its INSERT waits for this lock.
	tx, err := pools.Interactive.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.WithoutCancel(t.Context()))
	if _, err := tx.Exec(t.Context(), "LOCK TABLE samples IN SHARE MODE"); err != nil {
		t.Fatal(err)
	}
	finalize := func(v string) (int, http.Header, []byte) {
		b, _ := json.Marshal(map[string]any{"vehicle_id": v, "file_name": "f.csv", "total_chunks": 1})
		return e.do(t, http.MethodPost, "/api/v1/vehicle_data/finalize_upload", "application/json", b)
	}
	codes := make(chan [2]any, 2)
	go func() { s, _, b := finalize("a"); codes <- [2]any{s, string(b)} }()
	waitFor(t, 10*time.Second, func() bool {
		var n int
		err := e.Pool.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n)
		return err == nil && n > 0
	})

	t0 := time.Now()
	status, h, body := finalize("b")
	if d := time.Since(t0); d < wait*8/10 {
		t.Errorf("b was refused after %v, want after waiting about %v for a slot", d, wait)
	}
	wantBusy(t, status, h, body, "max-finalizes")

	go func() { s, _, b := finalize("c"); codes <- [2]any{s, string(b)} }()
	time.Sleep(wait / 3) // c waits for the slot a holds
	if err := tx.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if got := <-codes; got[0] != http.StatusOK {
			t.Errorf("finalize: %v %v, want 200 (a finished, then c had its slot)", got[0], got[1])
		}
	}
}

// Every query and path parameter is checked for valid UTF-8 and NUL before any handler, and
// the 400 names it.
func TestInvalidTextInParameters(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ path, field string }{
		{"/api/v1/vehicle_data/?vehicle_id=%FF", "vehicle_id"},
		{"/api/v1/vehicle_data/export/?vehicle_id=%FF", "vehicle_id"},
		{"/api/v1/vehicle_data/export/?vehicle_id=v&export=%FF", "export"},
		{"/api/v1/vehicle_data/?ordering=%00", "ordering"},
		{"/api/v1/vehicle_data/?timezone=Europe%2F%FF", "timezone"},
		{"/api/v1/vehicle_data/?cursor=%C3%28", "cursor"},
		{"/api/v1/vehicle_data/?page=%FF", "page"},
		{"/api/v1/vehicle_data/upload_status/?vehicle_id=v&file_name=%FF", "file_name"},
		{"/api/v1/vehicles/%FF/series/", "vehicle_id"},
		{"/api/v1/vehicles/v/series/?fields=%FF", "fields"},
		{"/api/v1/vehicle_data/?%FF=1", `"\xff"`},
	} {
		status, _, body := e.do(t, "GET", tc.path, "", nil)
		if status != http.StatusBadRequest {
			t.Errorf("GET %s: %d, want 400: %s", tc.path, status, body)
			continue
		}
		if p := problem(t, body); !strings.Contains(p.Detail, tc.field) && !contains(fieldNames(p), tc.field) {
			t.Errorf("GET %s: 400 does not name %s: %s", tc.path, tc.field, body)
		}
	}
	status, _, body := e.do(t, "GET", "/api/v1/vehicle_data/?vehicle_id=%ZZ", "", nil)
	if status != http.StatusBadRequest || !strings.Contains(string(body), "malformed query string") {
		t.Errorf("bad percent escape: %d %s", status, body)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Invented methods become one metric label value, so they cannot grow the series.
func TestMetricMethodLabelsBounded(t *testing.T) {
	e := newEnv(t)
	for _, m := range []string{"FOO", "BAR", "get", "PROPFIND"} {
		req, _ := http.NewRequest(m, e.URL+"/api/v1/vehicles/", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	_, _, body := e.do(t, "GET", "/metrics", "", nil)
	text := string(body)
	for _, m := range []string{"FOO", "BAR", "get", "PROPFIND"} {
		if strings.Contains(text, `method="`+m+`"`) {
			t.Errorf("metrics carry method %q", m)
		}
	}
	if !strings.Contains(text, `method="OTHER"`) {
		t.Error(`metrics lack method="OTHER"`)
	}
}

// /readyz answers within a second even when the database accepts connections and never
// answers.
func TestReadinessBounded(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, c) }() // swallow, never answer
		}
	}()
	// pgxpool.New connects lazily: no ping here, unlike database.Open.
	pool, err := pgxpool.New(t.Context(), "postgres://u@"+ln.Addr().String()+"/db?sslmode=disable&connect_timeout=30")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	r := database.NewReadiness(pool)
	t0 := time.Now()
	if err := r.Check(t.Context()); err == nil {
		t.Fatal("ready against a silent database")
	}
	if d := time.Since(t0); d > 1200*time.Millisecond {
		t.Errorf("readiness took %v, want under a second", d)
	}
}

func waitFor(t *testing.T, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// While draining, /readyz is red and every answer asks the client to reconnect, so a proxy
// moves to other replicas before the listener closes; requests are still served.
func TestDraining(t *testing.T) {
	var draining atomic.Bool
	ts := httptest.NewServer(server.New(server.Options{
		Config: config.Default(), Ingest: ingest.New(nil, ingest.Options{}), Draining: draining.Load,
	}))
	defer ts.Close()
	// Go's client reads Connection: close into resp.Close.
	get := func(path string) (int, bool) {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, resp.Close
	}
	if status, closed := get("/readyz"); status != http.StatusOK || closed {
		t.Fatalf("before draining: %d, Connection: close %v", status, closed)
	}
	draining.Store(true)
	if status, closed := get("/readyz"); status != http.StatusServiceUnavailable || !closed {
		t.Errorf("draining readyz: %d, Connection: close %v; want 503 and close", status, closed)
	}
	if status, closed := get("/healthz"); status != http.StatusOK || !closed {
		t.Errorf("draining healthz: %d, Connection: close %v; want 200 and close", status, closed)
	}
}

// A request that began before the drain and answers during it closes its connection too:
// otherwise the connection would sit idle in a proxy's pool until the shutdown closes it,
// possibly under the proxy's next request.
func TestDrainingClosesRequestsBegunBefore(t *testing.T) {
	var draining atomic.Bool
	ts := httptest.NewServer(server.New(server.Options{
		Config: config.Default(), Ingest: ingest.New(nil, ingest.Options{}), Draining: draining.Load,
	}))
	defer ts.Close()
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	// 100-continue: the server says Continue when the handler first reads the body, so the
	// request has begun before the drain does.
	body := `{"vehicle_id": 1}` // the wrong type: a 400, after the body is read
	fmt.Fprintf(conn, "POST /api/v1/vehicle_data/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n", len(body))
	br := bufio.NewReader(conn)
	line, err := br.ReadString('\n')
	if err != nil || !strings.Contains(line, " 100 ") {
		t.Fatalf("want 100 Continue, got %q (%v)", line, err)
	}
	if _, err := br.ReadString('\n'); err != nil { // the blank line after it
		t.Fatal(err)
	}
	draining.Store(true)
	if _, err := io.WriteString(conn, body); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !resp.Close {
		t.Errorf("answer during the drain: %d, Connection: close %v; want 400 and close", resp.StatusCode, resp.Close)
	}
}
