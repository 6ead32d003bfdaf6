package pgembed

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vehicle-data/vehicle-data/internal/config"
)

// searchableTempDir returns a fresh directory whose parents the postgres OS user can enter
// when the tests run as root (t.TempDir makes them 0700).
func searchableTempDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func start(t *testing.T, opts Options) *Server {
	t.Helper()
	began := time.Now()
	s, err := Start(t.Context(), opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("started in %v (data dir %s, port %d)", time.Since(began).Round(time.Millisecond), s.DataDir(), s.Port())
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	return s
}

func stop(t *testing.T, s *Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func queryString(t *testing.T, conn *pgx.Conn, sql string) string {
	t.Helper()
	var v string
	if err := conn.QueryRow(t.Context(), sql).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

func TestStartKeepsDataAcrossRestarts(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(searchableTempDir(t), "pg")
	s := start(t, Options{DataDir: dir})

	if got := s.DataDir(); got != dir {
		t.Errorf("DataDir() = %q, want %q", got, dir)
	}
	conn := connect(t, s.URL())
	if got := queryString(t, conn, "SELECT current_database()"); got != DatabaseName {
		t.Errorf("current_database() = %q, want %q", got, DatabaseName)
	}
	if got := queryString(t, conn, "SHOW fsync"); got != "on" {
		t.Errorf("fsync = %q, want on for a persistent cluster", got)
	}
	if got := queryString(t, conn, "SHOW listen_addresses"); got != "127.0.0.1" {
		t.Errorf("listen_addresses = %q, want 127.0.0.1", got)
	}
	if _, err := conn.Exec(t.Context(), "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('hello')"); err != nil {
		t.Fatal(err)
	}
	conn.Close(t.Context())
	stop(t, s)
	if _, err := os.Stat(filepath.Join(dir, "postmaster.pid")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("postmaster.pid after Stop: stat error %v, want not exist", err)
	}

	s = start(t, Options{DataDir: dir})
	if got := queryString(t, connect(t, s.URL()), "SELECT v FROM kept"); got != "hello" {
		t.Errorf("after restart: kept row = %q, want hello", got)
	}
	if _, err := os.Stat(filepath.Join(dir, LogFile+".1")); err != nil {
		t.Errorf("previous run's log not kept: %v", err)
	}
}

func TestStartRelativeDataDir(t *testing.T) {
	dir := searchableTempDir(t)
	t.Chdir(dir)
	s := start(t, Options{DataDir: config.Default().DataDir})
	if want := filepath.Join(dir, config.Default().DataDir); s.DataDir() != want {
		t.Errorf("DataDir() = %q, want %q", s.DataDir(), want)
	}
	if os.Geteuid() == 0 {
		fi, err := os.Stat(s.DataDir())
		if err != nil {
			t.Fatal(err)
		}
		if uid, _, _ := fileOwner(fi); uid == 0 {
			t.Errorf("data directory owned by root, want the %s user", serverUser)
		}
	}
}

func TestEphemeral(t *testing.T) {
	t.Parallel()
	s := start(t, Options{Ephemeral: true})
	conn := connect(t, s.URL())
	if got := queryString(t, conn, "SHOW fsync"); got != "off" {
		t.Errorf("fsync = %q, want off for an ephemeral cluster", got)
	}
	conn.Close(t.Context())
	stop(t, s)
	if _, err := os.Stat(s.DataDir()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ephemeral data dir after Stop: stat error %v, want not exist", err)
	}
}

func TestStopOnContextCancel(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	s, err := Start(ctx, Options{Ephemeral: true})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("server still running 30s after its context was cancelled")
	}
}

func TestTCPAuthentication(t *testing.T) {
	t.Parallel()
	s := start(t, Options{Ephemeral: true})
	pw, err := os.ReadFile(filepath.Join(s.DataDir(), PasswordFile))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		password string
		wantErr  bool
	}{
		{"no password", "", true},
		{"wrong password", "wrong", true},
		{"password file", strings.TrimSpace(string(pw)), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?sslmode=disable", superuser, tt.password, s.Port(), DatabaseName)
			conn, err := pgx.Connect(t.Context(), url)
			if err == nil {
				conn.Close(t.Context())
			}
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Errorf("connect over TCP: error %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

// A server killed outright leaves postmaster.pid behind; the next start must not trip on it.
func TestRestartAfterKill(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(searchableTempDir(t), "pg")
	s := start(t, Options{DataDir: dir})
	if _, err := connect(t, s.URL()).Exec(t.Context(), "CREATE TABLE survived (v int)"); err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-s.exited
	if _, err := os.Stat(filepath.Join(dir, "postmaster.pid")); err != nil {
		t.Fatalf("want a stale postmaster.pid after SIGKILL: %v", err)
	}

	s2 := start(t, Options{DataDir: dir})
	if got := queryString(t, connect(t, s2.URL()), "SELECT count(*)::text FROM survived"); got != "0" {
		t.Errorf("count after crash restart = %s, want 0", got)
	}
}

// PostgreSQL refuses a lock file whose pid belongs to any live process; after a reboot or in
// a container that pid often belongs to something else.
func TestRestartWithLockFileOfUnrelatedProcess(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(searchableTempDir(t), "pg")
	stop(t, start(t, Options{DataDir: dir}))

	// PostgreSQL itself ignores a pid of another OS user, so the stranger runs as the
	// server's user.
	acct, err := serverAccount()
	if err != nil {
		t.Fatal(err)
	}
	sleeper := exec.Command("sleep", "60")
	if err := configure(sleeper, acct, "/"); err != nil {
		t.Fatal(err)
	}
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() })
	pidFile := filepath.Join(dir, "postmaster.pid")
	content := fmt.Sprintf("%d\n%s\n1700000000\n5432\n%s\n127.0.0.1\n  1234567     12345\nready   \n",
		sleeper.Process.Pid, dir, dir)
	if err := os.WriteFile(pidFile, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := acct.chown(pidFile); err != nil { // as the server would have left it
		t.Fatal(err)
	}

	start(t, Options{DataDir: dir})
}

const helperEnv = "PGEMBED_TEST_HELPER_DATA_DIR"

// TestMain doubles as the child process of TestServerDiesWithParent: with helperEnv set it
// starts a server, prints the postmaster's pid and waits to be killed.
func TestMain(m *testing.M) {
	dir := os.Getenv(helperEnv)
	if dir == "" {
		os.Exit(m.Run())
	}
	s, err := Start(context.Background(), Options{DataDir: dir})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println(s.cmd.Process.Pid)
	time.Sleep(time.Minute)
	os.Exit(2)
}

func TestServerDiesWithParent(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(searchableTempDir(t), "pg")
	helper := exec.Command(os.Args[0])
	helper.Env = append(os.Environ(), helperEnv+"="+dir)
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = helper.Process.Kill(); _ = helper.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("read helper output: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("helper said %q, want the postmaster pid", line)
	}
	if !alive(pid) {
		t.Fatalf("postmaster %d not running while its parent lives", pid)
	}

	if err := helper.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()
	deadline := time.Now().Add(20 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("postmaster %d still running 20s after its parent was killed", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
	start(t, Options{DataDir: dir}) // and the data directory is usable again
}

// alive treats a zombie as dead: in a container nobody may reap the orphaned postmaster.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	rest := string(stat[strings.LastIndexByte(string(stat), ')')+1:])
	return !strings.HasPrefix(strings.TrimSpace(rest), "Z")
}

func TestStartFailureExplains(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(searchableTempDir(t), "pg")
	// Not a cluster (no PG_VERSION) and not empty: initdb must refuse, and say why.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "junk"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Start(t.Context(), Options{DataDir: dir})
	if err == nil {
		t.Fatal("Start in a non-empty non-cluster directory: got nil error")
	}
	if !strings.Contains(err.Error(), "initdb") || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("error %q, want it to quote initdb's complaint about the non-empty directory", err)
	}
}

func TestFindBinaries(t *testing.T) {
	fakeBin := t.TempDir()
	for _, name := range []string{"initdb", "postgres"} {
		if err := os.WriteFile(filepath.Join(fakeBin, name), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name         string
		path         string
		debianDirs   string
		wantInitdb   string
		wantErrMatch string
	}{
		{name: "in PATH", path: fakeBin, debianDirs: "/nonexistent/*/bin", wantInitdb: filepath.Join(fakeBin, "initdb")},
		{name: "nowhere", path: t.TempDir(), debianDirs: "/nonexistent/*/bin", wantErrMatch: "apt-get install postgresql"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("PATH", tt.path)
			old := debianBinDirs
			debianBinDirs = tt.debianDirs
			t.Cleanup(func() { debianBinDirs = old })

			got, err := findBinaries(t.Context())
			if tt.wantErrMatch != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErrMatch) {
					t.Fatalf("findBinaries() error = %v, want one mentioning %q", err, tt.wantErrMatch)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.initdb != tt.wantInitdb {
				t.Errorf("initdb = %q, want %q", got.initdb, tt.wantInitdb)
			}
		})
	}
}

func TestSortByVersionDesc(t *testing.T) {
	t.Parallel()
	dirs := []string{
		"/usr/lib/postgresql/9.6/bin",
		"/usr/lib/postgresql/15/bin",
		"/usr/lib/postgresql/10/bin",
		"/usr/lib/postgresql/16/bin",
	}
	sortByVersionDesc(dirs)
	want := []string{
		"/usr/lib/postgresql/16/bin",
		"/usr/lib/postgresql/15/bin",
		"/usr/lib/postgresql/10/bin",
		"/usr/lib/postgresql/9.6/bin",
	}
	if strings.Join(dirs, " ") != strings.Join(want, " ") {
		t.Errorf("sorted = %v, want %v", dirs, want)
	}
}

func TestCheckSearchable(t *testing.T) {
	t.Parallel()
	// A uid and gid nobody owns files with, so only the "other" permission bits apply.
	acct := &account{name: "nobody-test", uid: 424242, gid: 424242}
	tests := []struct {
		name       string
		parentMode fs.FileMode
		wantErr    bool
	}{
		{"parent closed", 0o700, true},
		{"parent searchable", 0o711, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := searchableTempDir(t)
			if err := os.Chmod(parent, tt.parentMode); err != nil {
				t.Fatal(err)
			}
			err := acct.checkSearchable(filepath.Join(parent, "data"))
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Errorf("checkSearchable: error %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

func TestMkdirParentsIgnoresUmask(t *testing.T) {
	old := syscall.Umask(0o077)
	t.Cleanup(func() { syscall.Umask(old) })
	base := t.TempDir()
	if err := os.Chmod(base, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := mkdirParents(filepath.Join(base, "a", "b")); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		path string
		want fs.FileMode
	}{
		{base, 0o750}, // existed: left alone
		{filepath.Join(base, "a"), 0o755},
		{filepath.Join(base, "a", "b"), 0o755},
	} {
		fi, err := os.Stat(tt.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != tt.want {
			t.Errorf("mode of %s = %v, want %v", tt.path, got, tt.want)
		}
	}
}

// A standby copied from a running primary streams its writes, creates no database of its own,
// and starts again from its own data directory without being copied anew.
func TestStandby(t *testing.T) {
	t.Parallel()
	root := searchableTempDir(t)
	settings := map[string]string{"fsync": "off"}
	primary := start(t, Options{DataDir: filepath.Join(root, "primary"), Settings: settings})
	pconn := connect(t, primary.URL())
	if got := queryString(t, pconn, "SHOW fsync"); got != "off" {
		t.Errorf("fsync = %q with Settings fsync=off", got)
	}
	if _, err := pconn.Exec(t.Context(), "CREATE TABLE replicated (v text); INSERT INTO replicated VALUES ('before')"); err != nil {
		t.Fatal(err)
	}

	dir := filepath.Join(root, "standby")
	standby := start(t, Options{DataDir: dir, Primary: primary, Settings: settings})
	if _, err := os.Stat(filepath.Join(dir, "standby.signal")); err != nil {
		t.Errorf("no standby.signal in the standby's data directory: %v", err)
	}
	sconn := connect(t, standby.URL())
	if got := queryString(t, sconn, "SELECT pg_is_in_recovery()::text"); got != "true" {
		t.Fatalf("pg_is_in_recovery() on the standby = %s", got)
	}
	if got := queryString(t, sconn, "SELECT string_agg(v, ',') FROM replicated"); got != "before" {
		t.Errorf("standby's copy = %q, want before", got)
	}
	if _, err := pconn.Exec(t.Context(), "INSERT INTO replicated VALUES ('after')"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, sconn, "SELECT count(*) = 2 FROM replicated")

	sconn.Close(t.Context())
	stop(t, standby)
	if _, err := pconn.Exec(t.Context(), "INSERT INTO replicated VALUES ('while down')"); err != nil {
		t.Fatal(err)
	}
	// Restarted without Primary: its own cluster, still a standby, catching up by itself.
	standby = start(t, Options{DataDir: dir, Port: standby.Port(), Settings: settings})
	waitFor(t, connect(t, standby.URL()), "SELECT count(*) = 3 FROM replicated")
}

// waitFor polls a boolean query for up to 10 s.
func waitFor(t *testing.T, conn *pgx.Conn, sql string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var ok bool
		if err := conn.QueryRow(t.Context(), sql).Scan(&ok); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still false after 10s", sql)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
