package pgembed

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// closedDir returns a fresh directory the fake account below cannot enter, like /root.
func closedDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(searchableTempDir(t), "home")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestChooseDataDir(t *testing.T) {
	t.Parallel()
	// A uid and gid nobody owns files with, so only the "other" permission bits apply.
	acct := &account{name: "nobody-test", uid: 424242, gid: 424242}
	open, closed := searchableTempDir(t), closedDir(t)
	fallback := filepath.Join(searchableTempDir(t), "var", "lib", "vehicle-data")
	closedFallback := filepath.Join(closedDir(t), "vehicle-data")
	tests := []struct {
		name         string
		acct         *account
		dir          string
		fallbackRoot string
		wantFallback bool   // chosen is fallbackDataDir(fallbackRoot, dir)
		wantReason   string // in reason
		wantErr      string // in err; "" for none
	}{
		{name: "reachable default kept", acct: acct, dir: filepath.Join(open, ".data", "postgres"), fallbackRoot: fallback},
		{name: "not root: kept", acct: nil, dir: filepath.Join(closed, ".data", "postgres"), fallbackRoot: fallback},
		{name: "default under a closed folder moves", acct: acct, dir: filepath.Join(closed, "vd", ".data", "postgres"),
			fallbackRoot: fallback, wantFallback: true, wantReason: "the nobody-test user cannot enter " + closed},
		{name: "explicit under a closed folder refused", acct: acct, dir: filepath.Join(closed, "pg"),
			wantErr: "cannot enter " + closed + " (mode 0700"},
		{name: "fallback closed too", acct: acct, dir: filepath.Join(closed, "pg"), fallbackRoot: closedFallback,
			wantErr: "the fallback " + closedFallback},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason, err := tt.acct.chooseDataDir(tt.dir, tt.fallbackRoot)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("chooseDataDir error = %v, want one containing %q", err, tt.wantErr)
				}
				if ue := (*UnreachableError)(nil); !errors.As(err, &ue) {
					t.Errorf("error %v is no *UnreachableError", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := tt.dir
			if tt.wantFallback {
				want = fallbackDataDir(tt.fallbackRoot, tt.dir)
			}
			if got != want {
				t.Errorf("chosen = %q, want %q", got, want)
			}
			if !strings.Contains(reason, tt.wantReason) || (tt.wantReason == "") != (reason == "") {
				t.Errorf("reason = %q, want %q", reason, tt.wantReason)
			}
		})
	}
	if _, err := os.Stat(fallback); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("chooseDataDir created %s (stat: %v); creating is Start's job", fallback, err)
	}
}

func TestFallbackDataDir(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	a, b := filepath.Join(base, "a", ".data", "postgres"), filepath.Join(base, "b", ".data", "postgres")
	link := filepath.Join(base, "link")
	if err := os.Mkdir(filepath.Join(base, "a"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(base, "a"), link); err != nil {
		t.Fatal(err)
	}
	const root = "/var/lib/vehicle-data"
	got := fallbackDataDir(root, a)
	if !regexp.MustCompile(`^/var/lib/vehicle-data/[0-9a-f]{12}/postgres$`).MatchString(got) {
		t.Errorf("fallbackDataDir = %q, want /var/lib/vehicle-data/<12 hex digits>/postgres", got)
	}
	if again := fallbackDataDir(root, a); again != got {
		t.Errorf("same path, another run: %q, then %q", got, again)
	}
	if other := fallbackDataDir(root, b); other == got {
		t.Errorf("two checkouts share %q", got)
	}
	if viaLink := fallbackDataDir(root, filepath.Join(link, ".data", "postgres")); viaLink != got {
		t.Errorf("through a symlink: %q, want %q", viaLink, got)
	}
}

func TestClaimFallback(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(t.TempDir(), "vehicle-data", "0123456789ab", "postgres")
	if err := claimFallback(dataDir, "/root/a/.data/postgres"); err != nil {
		t.Fatal(err)
	}
	if err := claimFallback(dataDir, "/root/a/.data/postgres"); err != nil {
		t.Errorf("the same checkout again: %v", err)
	}
	if err := claimFallback(dataDir, "/root/b/.data/postgres"); err == nil || !strings.Contains(err.Error(), "/root/a/.data/postgres") {
		t.Errorf("another checkout with the same hash: error %v, want one naming the first", err)
	}
	b, err := os.ReadFile(filepath.Join(filepath.Dir(dataDir), originFile))
	if err != nil || string(b) != "/root/a/.data/postgres\n" {
		t.Errorf("%s = %q, %v; want the first checkout's path", originFile, b, err)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// logLine returns the attributes of the first JSON log line with message msg, or nil.
func (s *syncBuffer) logLine(t *testing.T, msg string) map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, line := range bytes.Split(s.b.Bytes(), []byte("\n")) {
		var m map[string]any
		if json.Unmarshal(line, &m) == nil && m["msg"] == msg {
			return m
		}
	}
	return nil
}

func skipUnlessRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("only root runs the server as another OS user, who may be unable to reach a folder")
	}
}

// A checkout in /root: the default data directory moves to a fallback the postgres user
// reaches, and comes back to it after a restart.
func TestStartMovesUnreachableDataDir(t *testing.T) {
	skipUnlessRoot(t)
	t.Parallel()
	home := t.TempDir() // 0700, owned by root: like /root
	if err := os.Chmod(home, 0o700); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(home, "vd", ".data", "postgres")
	root := filepath.Join(searchableTempDir(t), "vehicle-data")
	want := fallbackDataDir(root, dir)
	logs := &syncBuffer{}
	s := start(t, Options{DataDir: dir, FallbackRoot: root, Logger: slog.New(slog.NewJSONHandler(logs, nil))})

	if s.DataDir() != want {
		t.Errorf("DataDir() = %q, want the fallback %q", s.DataDir(), want)
	}
	line := logs.logLine(t, "embedded PostgreSQL data folder")
	if line == nil || line["data_dir"] != want || line["instead_of"] != dir ||
		line["reason"] != "the postgres user cannot enter "+home {
		t.Errorf("log line %v, want data_dir=%s instead_of=%s reason naming %s", line, want, dir, home)
	}
	fi, err := os.Stat(want)
	if err != nil {
		t.Fatal(err)
	}
	acct, err := serverAccount()
	if err != nil {
		t.Fatal(err)
	}
	if uid, _, _ := fileOwner(fi); uid != acct.uid || fi.Mode().Perm() != 0o700 {
		t.Errorf("fallback owned by uid %d with mode %v, want the %s user's, 0700", uid, fi.Mode().Perm(), serverUser)
	}
	if _, err := connect(t, s.URL()).Exec(t.Context(), "CREATE TABLE kept (v int)"); err != nil {
		t.Fatal(err)
	}
	stop(t, s)

	if fi, err := os.Stat(home); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the closed folder: %v, %v; want it left at 0700", fi.Mode().Perm(), err)
	}
	if _, err := os.Stat(filepath.Join(home, "vd")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("something was created under the closed folder (stat: %v)", err)
	}

	s = start(t, Options{DataDir: dir, FallbackRoot: root})
	if s.DataDir() != want {
		t.Errorf("after restart DataDir() = %q, want %q", s.DataDir(), want)
	}
	if got := queryString(t, connect(t, s.URL()), "SELECT count(*)::text FROM kept"); got != "0" {
		t.Errorf("after restart: count = %s, want the table kept", got)
	}
}

// A data directory the operator chose is refused, not replaced, and nothing is created.
func TestStartRefusesUnreachableDataDir(t *testing.T) {
	skipUnlessRoot(t)
	t.Parallel()
	home := t.TempDir()
	if err := os.Chmod(home, 0o700); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(home, "pg")
	_, err := Start(t.Context(), Options{DataDir: dir})
	var ue *UnreachableError
	if !errors.As(err, &ue) || ue.Closed != home || ue.DataDir != dir {
		t.Fatalf("Start: error %v, want an *UnreachableError naming %s and %s", err, home, dir)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s created (stat: %v)", dir, err)
	}
}
