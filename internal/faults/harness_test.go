//go:build faults

package faults_test

// The harness: the binary built once per run, the one PostgreSQL it stops and restarts,
// server processes, and the instruments (memory sampler, throttled reader, latencies).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vehicle-data/vehicle-data/gen/client"
	"github.com/vehicle-data/vehicle-data/internal/database"
	"github.com/vehicle-data/vehicle-data/internal/pgembed"
	"github.com/vehicle-data/vehicle-data/internal/sample"
)

// Bounds on the harness's own waits.
const (
	readyTimeout = time.Minute      // a server's start until /readyz is 200
	stopTimeout  = 20 * time.Second // SIGTERM until exit (the server's grace is SHUTDOWN_TIMEOUT=10s)
)

// suite is what TestMain sets up for every test: the binary and the PostgreSQL server.
var suite struct {
	bin    string // the vehicle-data binary, built once
	dir    string // the run's temporary folder (PostgreSQL's data, the binary)
	pgOpts pgembed.Options

	mu sync.Mutex
	pg *pgembed.Server // nil while stopped (TestPostgresRestart)
}

func TestMain(m *testing.M) {
	code, err := runSuite(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		code = 1
	}
	os.Exit(code)
}

func runSuite(m *testing.M) (int, error) {
	began := time.Now()
	// Under the system's temporary folder (not t.TempDir's 0700 parents): run as root,
	// PostgreSQL runs as the postgres OS user, which must be able to enter it.
	dir, err := os.MkdirTemp("", "vehicle-data-faults-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		return 0, err
	}
	suite.dir = dir

	// The real binary, so that its http.Server, timeouts and memory are the service's own.
	suite.bin = filepath.Join(dir, "vehicle-data")
	build := exec.Command("go", "build", "-o", suite.bin, "github.com/vehicle-data/vehicle-data/cmd/vehicle-data")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return 0, fmt.Errorf("go build: %w", err)
	}

	// A fixed port and a data folder that outlives Stop: TestPostgresRestart stops the
	// server and starts it again where the service expects it.
	port, err := freePort()
	if err != nil {
		return 0, err
	}
	suite.pgOpts = pgembed.Options{DataDir: filepath.Join(dir, "postgres"), Port: port}
	if err := startPostgres(); err != nil {
		return 0, err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := stopPostgres(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "faults: stop PostgreSQL:", err)
		}
	}()
	if err := tunePostgres(); err != nil {
		return 0, err
	}
	fmt.Fprintf(os.Stderr, "faults: built the server and started PostgreSQL on port %d in %s\n",
		port, time.Since(began).Round(time.Millisecond))
	return m.Run(), nil
}

// tunePostgres trades the test cluster's durability for speed (loads, 1 GiB of chunks).
// The faults injected are the service's and PostgreSQL is only ever stopped cleanly, so
// nothing checked depends on fsync. ALTER SYSTEM keeps it across restarts.
func tunePostgres() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for _, s := range []string{
		"ALTER SYSTEM SET fsync = off",
		"ALTER SYSTEM SET synchronous_commit = off",
		"ALTER SYSTEM SET full_page_writes = off",
		"SELECT pg_reload_conf()",
	} {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

// startPostgres starts the suite's PostgreSQL (again) on its port and data folder.
func startPostgres() error {
	// Not a test's context: the server outlives tests, and stopping it is ours to do.
	pg, err := pgembed.Start(context.Background(), suite.pgOpts)
	if err != nil {
		return err
	}
	suite.mu.Lock()
	suite.pg = pg
	suite.mu.Unlock()
	return nil
}

// stopPostgres stops it (fast shutdown: sessions are disconnected); stopped is no error.
func stopPostgres(ctx context.Context) error {
	suite.mu.Lock()
	pg := suite.pg
	suite.pg = nil
	suite.mu.Unlock()
	if pg == nil {
		return nil
	}
	return pg.Stop(ctx)
}

func postgresRunning() bool {
	suite.mu.Lock()
	defer suite.mu.Unlock()
	return suite.pg != nil
}

// dbURL is the URL of database name on the suite's PostgreSQL (over its unix socket, whose
// path does not change across restarts).
func dbURL(name string) string {
	suite.mu.Lock()
	pg := suite.pg
	suite.mu.Unlock()
	if pg == nil {
		panic("faults: PostgreSQL is not running")
	}
	u, err := url.Parse(pg.URL())
	if err != nil {
		panic(err)
	}
	u.Path = "/" + name
	return u.String()
}

// createDatabase makes a fresh, migrated database named fx_<name> and drops it at cleanup.
func createDatabase(t testing.TB, name string) string {
	t.Helper()
	name = "fx_" + name
	if err := makeDatabase(name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !postgresRunning() {
			return
		}
		if err := execSQL(context.Background(), "postgres", "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	return name
}

func makeDatabase(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ident := pgx.Identifier{name}.Sanitize()
	if err := execSQL(ctx, "postgres", "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)", "CREATE DATABASE "+ident); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	pool, err := database.Open(ctx, dbURL(name))
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := database.MigrateUp(ctx, pool); err != nil {
		return fmt.Errorf("migrate %s: %w", name, err)
	}
	return nil
}

func execSQL(ctx context.Context, db string, stmts ...string) error {
	conn, err := pgx.Connect(ctx, dbURL(db))
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("%.40s: %w", s, err)
		}
	}
	return nil
}

// queryInt runs a query answering one integer.
func queryInt(ctx context.Context, db, sql string, args ...any) (int64, error) {
	conn, err := pgx.Connect(ctx, dbURL(db))
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var n int64
	err = conn.QueryRow(ctx, sql, args...).Scan(&n)
	return n, err
}

// loadRows inserts n samples of vehicle, one a second from 2024-01-01, in one statement
// inside PostgreSQL into the real schema (the triggers keep every rollup), then vacuums
// as autovacuum would, so that it does not start in the middle of a measurement.
func loadRows(ctx context.Context, db, vehicle string, n int) error {
	conn, err := pgx.Connect(ctx, dbURL(db))
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	began := time.Now()
	_, err = conn.Exec(ctx, `
		INSERT INTO samples (vehicle_key, "timestamp", speed, odometer, elevation, soc, shift_state)
		SELECT k.key,
		       timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second',
		       CASE WHEN g % 50 = 0 THEN NULL ELSE (g % 130)::float8 + 0.5 END,
		       g * 0.01,
		       (g % 900)::float8 / 3 - 50,
		       (g % 101)::smallint,
		       CASE WHEN g % 50 = 0 THEN NULL WHEN g % 7 = 0 THEN 'R' ELSE 'D' END
		FROM (SELECT vehicle_key_for($1) AS key) k, generate_series(1, $2::int) g`, vehicle, n)
	if err != nil {
		return fmt.Errorf("load %d rows of %s: %w", n, vehicle, err)
	}
	inserted := time.Since(began)
	for _, s := range []string{"VACUUM (ANALYZE) samples", "VACUUM (ANALYZE) sample_five_minutes", "VACUUM (ANALYZE) sample_hours", "VACUUM (ANALYZE) vehicles"} {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	fmt.Fprintf(os.Stderr, "faults: loaded %d rows of %s (insert %s, vacuum %s)\n", n, vehicle,
		inserted.Round(time.Millisecond), (time.Since(began) - inserted).Round(time.Millisecond))
	return nil
}

// The big data set: bigRows samples of bigVehicle, loaded once per run by the first test
// that needs it (exports that outlast a measurement; 1M-row XLSX workbooks).
const (
	bigVehicle = "fx-big"
	bigRows    = 1_000_000
)

var big struct {
	once sync.Once
	db   string
	err  error
}

func bigDatabase(t testing.TB) string {
	t.Helper()
	big.once.Do(func() {
		big.db = "fx_big"
		if big.err = makeDatabase(big.db); big.err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		big.err = loadRows(ctx, big.db, bigVehicle, bigRows)
	})
	if big.err != nil {
		t.Fatal(big.err)
	}
	return big.db
}

// --- the server process ---

// serverConfig is how a test wants the server run.
type serverConfig struct {
	db   string            // database name (the server migrates it on start, as in production)
	env  map[string]string // settings, passed as the server's environment variables
	args []string          // extra flags of serve
}

// server is `vehicle-data serve` as a child process on a fixed loopback port, so that it
// can be killed and started again at the same address.
type server struct {
	t       testing.TB
	cfg     serverConfig
	addr    string
	base    string // http://127.0.0.1:port
	logPath string

	mu   sync.Mutex
	proc *proc
}

type proc struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has exited; err is then set
	err    error
	killed bool // by the test: its exit is expected
}

// startServer starts the server and waits until /readyz is 200; cleanup stops it.
func startServer(t testing.TB, cfg serverConfig) *server {
	t.Helper()
	s := newServer(t, cfg)
	s.start(t)
	return s
}

// newServer is a server on a port of its own, not started yet; cleanup stops it.
func newServer(t testing.TB, cfg serverConfig) *server {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	s := &server{t: t, cfg: cfg, addr: addr, base: "http://" + addr, logPath: filepath.Join(t.TempDir(), "server.log")}
	t.Cleanup(s.cleanup)
	return s
}

// start runs a new process and waits for it to be ready; it returns when it was.
func (s *server) start(t testing.TB) time.Time {
	t.Helper()
	ready, err := s.waitReady(s.spawn(t))
	if err != nil {
		t.Fatal(err)
	}
	return ready
}

// spawn runs a new process without waiting for it (servers started together).
func (s *server) spawn(t testing.TB) *proc {
	t.Helper()
	log, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close() // the child has its own descriptor
	cmd := exec.Command(s.bin(), append([]string{"serve"}, s.cfg.args...)...)
	cmd.Env = s.environ()
	cmd.Stdout, cmd.Stderr = log, log
	// Its own process group (a Ctrl-C of the test reaches it only through us), and killed
	// by the kernel if the test process dies first: no orphans.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p, err := launch(cmd)
	if err != nil {
		t.Fatalf("start the server: %v", err)
	}
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
	return p
}

func (s *server) bin() string { return suite.bin }

// environ is the server's environment: the runtime's and system's variables of ours (so
// that settings of the caller's shell do not leak in) and the test's settings.
func (s *server) environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case name == "PATH", name == "HOME", name == "TMPDIR", name == "LANG", name == "TZ",
			strings.HasPrefix(name, "GO"), strings.HasPrefix(name, "LC_"):
			env = append(env, kv)
		}
	}
	// A short grace on SIGTERM: shutdown is not under test, and it bounds every cleanup.
	env = append(env, "ADDR="+s.addr, "DATABASE_URL="+dbURL(s.cfg.db), "LOG_LEVEL=warn", "SHUTDOWN_TIMEOUT=10s")
	for k, v := range s.cfg.env {
		env = append(env, k+"="+v)
	}
	return env
}

// launch starts cmd from a goroutine locked to its OS thread until the child exits:
// Pdeathsig fires when the forking thread ends, and a locked thread ends only with us.
func launch(cmd *exec.Cmd) (*proc, error) {
	p := &proc{cmd: cmd, exited: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, <-started
}

func (s *server) current() *proc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc
}

func (s *server) pid() int { return s.current().cmd.Process.Pid }

func (s *server) waitReady(p *proc) (time.Time, error) {
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil}}
	defer hc.CloseIdleConnections()
	deadline := time.Now().Add(readyTimeout)
	for time.Now().Before(deadline) {
		if resp, err := hc.Get(s.base + "/readyz"); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Now(), nil
			}
		}
		select {
		case <-p.exited:
			return time.Time{}, fmt.Errorf("the server exited before it was ready (%v)\n%s", p.err, s.logTail())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return time.Time{}, fmt.Errorf("the server was not ready within %s\n%s", readyTimeout, s.logTail())
}

// kill sends SIGKILL and waits for the process to be gone.
func (s *server) kill() {
	p := s.current()
	s.mu.Lock()
	p.killed = true
	s.mu.Unlock()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// stop asks for a graceful shutdown and kills the server if it takes too long.
func (s *server) stop() error {
	p := s.current()
	select {
	case <-p.exited:
		return nil
	default:
	}
	s.mu.Lock()
	p.killed = true
	s.mu.Unlock()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return nil
	case <-time.After(stopTimeout):
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.exited
		return fmt.Errorf("the server did not stop within %s of SIGTERM and was killed", stopTimeout)
	}
}

// cleanup stops the server; an exit the test did not cause is a failure.
func (s *server) cleanup() {
	p := s.current()
	if p == nil {
		return
	}
	select {
	case <-p.exited:
		s.mu.Lock()
		killed := p.killed
		s.mu.Unlock()
		if !killed {
			s.t.Errorf("the server exited by itself (%v)\n%s", p.err, s.logTail())
		}
	default:
		if err := s.stop(); err != nil {
			s.t.Error(err)
		}
	}
	if s.t.Failed() {
		s.t.Logf("server log:\n%s", s.logTail())
		if errs := s.errorLines(3); errs != "" {
			s.t.Logf("first errors in the server log:\n%s", errs)
		}
	}
}

// errorLines are the first n distinct ERROR lines of the log (the causes behind 5xx).
func (s *server) errorLines(n int) string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return ""
	}
	var out []string
	seen := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, `"level":"ERROR"`) {
			continue
		}
		var e struct{ Msg, Err string }
		_ = json.Unmarshal([]byte(line), &e)
		if key := e.Msg + e.Err; !seen[key] {
			seen[key] = true
			if out = append(out, line); len(out) == n {
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

// logRecords are the log's records with message msg, each decoded as a map.
func (s *server) logRecords(msg string) []map[string]any {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return nil
	}
	var out []map[string]any
	for _, line := range strings.Split(string(b), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

func (s *server) logTail() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return "no server log: " + err.Error()
	}
	const keep = 3000
	b = bytes.TrimSpace(b)
	if len(b) > keep {
		b = b[len(b)-keep:]
	}
	return fmt.Sprintf("%s ends with:\n%s", s.logPath, b)
}

// api is the generated client on hc.
func (s *server) api(t testing.TB, hc *http.Client) *client.Client {
	t.Helper()
	c, err := client.NewClient(s.base, client.WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// goroutines reads go_goroutines from the server's /metrics.
func (s *server) goroutines(ctx context.Context, hc *http.Client) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("/metrics: status %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return 0, fmt.Errorf("go_goroutines %q: %w", v, err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			return int(f), nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("/metrics has no go_goroutines")
}

// hasFlag says whether `serve -h` lists the flag (features built in parallel).
func hasFlag(t testing.TB, name string) bool {
	t.Helper()
	out, _ := exec.Command(suite.bin, "serve", "-h").CombinedOutput()
	return bytes.Contains(out, []byte("-"+name+" "))
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// --- HTTP ---

// newHTTPClient is a loopback client of its own (its own connections); timeout bounds each
// request including its body, 0 for none (then bound the request by its context).
func newHTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{
		Proxy:                 nil, // loopback only, whatever the environment says
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: timeout, // a finalize answers only when done
		DisableCompression:    true,
	}}
}

// slowHTTPClient is for clients that read slowly: a small socket receive buffer, so that the
// kernel does not soak up the response on the reader's behalf, and a bound on the headers.
func slowHTTPClient() *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{Transport: &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetReadBuffer(32 << 10)
			}
			return c, err
		},
		ResponseHeaderTimeout: 10 * time.Second,
		DisableCompression:    true,
	}}
}

// result is one finished request.
type result struct {
	status int
	header http.Header
	body   []byte
	err    error
}

// read reads a whole response of the generated client (short responses only).
func read(resp *http.Response, err error) result {
	if err != nil {
		return result{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return result{status: resp.StatusCode, header: resp.Header, body: b, err: err}
}

func (r result) String() string {
	if r.err != nil {
		return "error: " + r.err.Error()
	}
	b := r.body
	if len(b) > 300 {
		b = b[:300]
	}
	return fmt.Sprintf("%d %s", r.status, bytes.TrimSpace(b))
}

// detail is the JSON problem's detail, "" when there is none.
func (r result) detail() string {
	var p struct {
		Detail string `json:"detail"`
	}
	_ = json.Unmarshal(r.body, &p)
	return p.Detail
}

// undocumented says what makes a 503 other than the contract's: "" for a 503 with a
// Retry-After (seconds or a date) and a JSON detail.
func undocumented503(h http.Header, body []byte) string {
	var problems []string
	ra := h.Get("Retry-After")
	if ra == "" {
		problems = append(problems, "no Retry-After")
	} else if _, err := strconv.Atoi(ra); err != nil {
		if _, err := http.ParseTime(ra); err != nil {
			problems = append(problems, fmt.Sprintf("Retry-After %q is neither seconds nor a date", ra))
		}
	}
	if (result{body: body}).detail() == "" {
		problems = append(problems, "no JSON detail")
	}
	return strings.Join(problems, ", ")
}

// drain reads and discards a response (any size), for requests that only need the status.
func drain(resp *http.Response, err error) (int, http.Header, error) {
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header, err
}

// readThrottled reads r at about rate bytes a second until ctx ends or r does (io.EOF).
func readThrottled(ctx context.Context, r io.Reader, rate int) (int64, error) {
	buf := make([]byte, 4<<10)
	began := time.Now()
	var n int64
	for ctx.Err() == nil {
		k, err := r.Read(buf)
		n += int64(k)
		if err != nil {
			return n, err
		}
		due := began.Add(time.Duration(float64(n) / float64(rate) * float64(time.Second)))
		if wait := time.Until(due); wait > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
		}
	}
	return n, nil
}

// postChunk posts an upload chunk as multipart forms, the chunk's bytes streamed from the
// caller's slice (one copy in memory however many posts share it).
func postChunk(ctx context.Context, c *client.Client, vehicle, file string, index, total int, data []byte) result {
	var head bytes.Buffer
	mw := multipart.NewWriter(&head)
	for _, f := range [][2]string{{"vehicle_id", vehicle}, {"file_name", file},
		{"chunk_index", strconv.Itoa(index)}, {"total_chunks", strconv.Itoa(total)}} {
		if err := mw.WriteField(f[0], f[1]); err != nil {
			return result{err: err}
		}
	}
	if _, err := mw.CreateFormFile("chunk", file); err != nil {
		return result{err: err}
	}
	prefix := slices.Clone(head.Bytes())
	head.Reset()
	if err := mw.Close(); err != nil {
		return result{err: err}
	}
	suffix := head.Bytes()
	length := int64(len(prefix) + len(data) + len(suffix))
	body := io.MultiReader(bytes.NewReader(prefix), bytes.NewReader(data), bytes.NewReader(suffix))
	setLength := func(_ context.Context, req *http.Request) error { req.ContentLength = length; return nil }
	return read(c.UploadChunkWithBody(ctx, mw.FormDataContentType(), body, setLength))
}

// uploadFile posts data as chunks of chunkSize; every chunk must be taken.
func uploadFile(ctx context.Context, c *client.Client, vehicle, file string, data []byte, chunkSize int) (int, error) {
	total := max((len(data)+chunkSize-1)/chunkSize, 1)
	for i := range total {
		part := data[i*chunkSize : min((i+1)*chunkSize, len(data))]
		if r := postChunk(ctx, c, vehicle, file, i, total, part); r.status != http.StatusOK {
			return total, fmt.Errorf("chunk %d/%d of %s: %s", i, total, file, r)
		}
	}
	return total, nil
}

// sampleCSV is a file of rows rows as `vehicle-data sample` writes them (it fails only on
// options that these are not: negative rows, a start past year 9999).
func sampleCSV(vehicle string, rows int) []byte {
	var b bytes.Buffer
	if err := sample.Write(&b, sample.Options{VehicleID: vehicle, Rows: rows, Seed: 9}); err != nil {
		panic(err)
	}
	return b.Bytes()
}

func ptr[T any](v T) *T { return &v }

// --- instruments ---

// latencies collects request durations and outcomes from many goroutines.
type latencies struct {
	mu       sync.Mutex
	d        []time.Duration
	byName   map[string][]time.Duration
	statuses map[int]int
	errs     int
	examples []string // the first failures, for the message
}

func newLatencies() *latencies {
	return &latencies{statuses: map[int]int{}, byName: map[string][]time.Duration{}}
}

func (l *latencies) add(what string, d time.Duration, status int, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.d = append(l.d, d)
	l.byName[what] = append(l.byName[what], d)
	if err != nil {
		l.errs++
	} else {
		l.statuses[status]++
	}
	if (err != nil || status/100 != 2) && len(l.examples) < 5 {
		if err != nil {
			l.examples = append(l.examples, fmt.Sprintf("%s: %v", what, err))
		} else {
			l.examples = append(l.examples, fmt.Sprintf("%s: %d after %s", what, status, ms(d)))
		}
	}
}

// pct is the p-th percentile (0..100), nearest rank.
func (l *latencies) pct(p float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return 0
	}
	s := slices.Clone(l.d)
	slices.Sort(s)
	i := int(p/100*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// p99s is each kind's p99, "list=3.1ms retrieve=..." in name order, to see which is slow.
func (l *latencies) p99s() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, name := range slices.Sorted(maps.Keys(l.byName)) {
		s := slices.Clone(l.byName[name])
		slices.Sort(s)
		out = append(out, name+"="+ms(s[min(max(int(0.99*float64(len(s))+0.5)-1, 0), len(s)-1)]))
	}
	return strings.Join(out, " ")
}

func (l *latencies) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.d)
}

// non2xx counts answers outside 2xx (transport errors apart).
func (l *latencies) non2xx() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for s, k := range l.statuses {
		if s/100 != 2 {
			n += k
		}
	}
	return n
}

func (l *latencies) errors() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.errs
}

func (l *latencies) failures() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.examples, "; ")
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + "ms"
}

func mib(b int64) string { return strconv.FormatFloat(float64(b)/(1<<20), 'f', 1, 64) + "MiB" }

func secs(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) + "s"
}

// memSample is one reading of the server's /proc/<pid>/status.
type memSample struct {
	at       time.Time
	rss, hwm int64
}

// memSampler reads a process's VmRSS and VmHWM every interval. Above guard it kills the
// process (the check has failed by then), so that a server without the memory bound does
// not take the machine down with it.
type memSampler struct {
	pid     int
	guard   int64
	onGuard func()
	stopc   chan struct{}
	done    chan struct{}

	mu      sync.Mutex
	samples []memSample
	tripped bool
}

func sampleMemory(pid int, every time.Duration, guard int64, onGuard func()) *memSampler {
	m := &memSampler{pid: pid, guard: guard, onGuard: onGuard, stopc: make(chan struct{}), done: make(chan struct{})}
	m.sample()
	go func() {
		defer close(m.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-m.stopc:
				return
			case <-tick.C:
				m.sample()
			}
		}
	}()
	return m
}

func (m *memSampler) sample() {
	s, err := readMemory(m.pid)
	if err != nil {
		return // exited: the last samples stand
	}
	m.mu.Lock()
	m.samples = append(m.samples, s)
	trip := m.guard > 0 && s.rss > m.guard && !m.tripped
	if trip {
		m.tripped = true
	}
	m.mu.Unlock()
	if trip && m.onGuard != nil {
		m.onGuard()
	}
}

// stop ends the sampling (after one last sample).
func (m *memSampler) stop() {
	m.sample()
	close(m.stopc)
	<-m.done
}

// peak is the highest VmRSS sampled in [from, to) (zero times: unbounded) and the last VmHWM.
func (m *memSampler) peak(from, to time.Time) (rss, hwm int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.samples {
		if (from.IsZero() || !s.at.Before(from)) && (to.IsZero() || s.at.Before(to)) {
			rss = max(rss, s.rss)
		}
		hwm = max(hwm, s.hwm)
	}
	return rss, hwm
}

func (m *memSampler) guardTripped() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tripped
}

func readMemory(pid int) (memSample, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memSample{}, err
	}
	s := memSample{at: time.Now()}
	var got int
	for _, line := range strings.Split(string(b), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return memSample{}, fmt.Errorf("unexpected %q", line)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return memSample{}, err
		}
		if name == "VmRSS" {
			s.rss = kb << 10
		} else {
			s.hwm = kb << 10
		}
		got++
	}
	if got != 2 {
		return memSample{}, fmt.Errorf("process %d: no VmRSS/VmHWM (exited?)", pid)
	}
	return s, nil
}

// durationEnv reads a duration setting of the suite from the environment.
func durationEnv(t testing.TB, name string, def time.Duration) time.Duration {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a positive duration such as 60s", name, v)
	}
	return d
}
