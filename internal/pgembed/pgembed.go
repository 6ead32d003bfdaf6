// Package pgembed runs a private PostgreSQL server from the PostgreSQL binaries installed on
// the machine: the default database of `vehicle-data serve` when no DATABASE_URL is set, and
// the tests' fallback when Docker is missing.
//
// The server listens on 127.0.0.1 and on a unix socket in a directory only its OS user can
// enter. The socket trusts its users; TCP wants the password kept in the data directory (see
// PasswordFile). Run as root, the server runs as the OS user "postgres", and every parent of
// the data directory must be searchable by that user; when one is not, the data directory
// moves under Options.FallbackRoot if set, and is refused otherwise.
//
// With Options.Primary the server is a hot standby of another one, copied by pg_basebackup -R
// (tests of the reads on a standby use it).
package pgembed

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net"
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
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	// DatabaseName is the database that Start creates for the application.
	DatabaseName = "vehicle_data"
	// LogFile is the server's log inside the data directory; the previous run's is LogFile+".1".
	LogFile = "pgembed.log"
	// PasswordFile, inside the data directory, holds the superuser's password for TCP
	// connections (psql -h 127.0.0.1). Connections over the socket need none.
	PasswordFile = "pgembed.password"

	superuser           = "postgres"
	defaultStartTimeout = time.Minute
	// maxSocketPath keeps <dir>/.s.PGSQL.<port> under the 107-byte limit of sun_path.
	maxSocketPath = 100
)

// Options configure Start.
type Options struct {
	// DataDir holds the cluster between runs (serve takes it from config: --data-dir); it is
	// made absolute. Required unless Ephemeral, which ignores it.
	DataDir string
	// FallbackRoot, when set, is where DataDir moves when the server's OS user (postgres, when
	// we are root) cannot reach it, say in a checkout under /root: to
	// FallbackRoot/<hash of DataDir's absolute path>/postgres, the same folder on every run,
	// and Start logs where and why. Leave it empty for a DataDir the operator chose: an
	// unreachable one is then an *UnreachableError, not silently replaced.
	FallbackRoot string
	// Port is the TCP port on 127.0.0.1, which also names the unix socket; 0 picks a free one.
	Port int
	// Logger receives start and stop events; nil discards them. The server's own log goes to
	// LogFile in the data directory.
	Logger *slog.Logger
	// Ephemeral puts the cluster in a temporary directory that Stop removes, and turns
	// durability off (fsync=off) for speed. For tests only.
	Ephemeral bool
	// StartTimeout bounds initdb (or pg_basebackup) plus startup; zero means one minute.
	StartTimeout time.Duration
	// Settings are further server settings, passed as postgres -c name=value (for example
	// hot_standby_feedback=on); nil adds none.
	Settings map[string]string
	// Primary, when set, makes a data directory that holds no cluster yet a hot standby of
	// that running server instead of a new cluster: pg_basebackup -R copies the primary over
	// TCP (127.0.0.1, as the superuser, with the primary's PasswordFile; initdb's pg_hba.conf
	// allows replication there) and leaves standby.signal and primary_conninfo behind, so the
	// standby streams from the primary from then on. A data directory that holds a cluster
	// already (a standby restarted) starts as it is, without contacting Primary.
	Primary *Server
}

// Server is a running PostgreSQL server. Stop it when done.
type Server struct {
	log       *slog.Logger
	dataDir   string
	socketDir string
	port      int
	tempRoot  string // removed by Stop: the ephemeral cluster
	tempSock  string // removed by Stop: a socket directory outside a long data directory path
	logPath   string
	logFile   *os.File

	cmd     *exec.Cmd
	exited  chan struct{} // closed once the postmaster has exited; exitErr is then set
	exitErr error

	stopOnce sync.Once
	stopErr  error
}

// Start runs initdb when the data directory holds no cluster yet, starts the server, waits
// until it accepts connections and creates DatabaseName if missing.
//
// Cancelling ctx stops the server, so pass a context that outlives every user of the
// database; the server also stops when this process dies.
func Start(ctx context.Context, opts Options) (_ *Server, err error) {
	began := time.Now()
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Port < 0 || opts.Port > 65535 {
		return nil, fmt.Errorf("start postgres: invalid port %d", opts.Port)
	}
	startCtx, cancel := context.WithTimeout(ctx, cmp.Or(opts.StartTimeout, defaultStartTimeout))
	defer cancel()

	bins, err := findBinaries(startCtx)
	if err != nil {
		return nil, err
	}
	acct, err := serverAccount()
	if err != nil {
		return nil, err
	}

	s := &Server{log: log}
	defer func() {
		if err != nil {
			// Remove what we made; err already tells the story.
			stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = s.Stop(stopCtx)
		}
	}()

	if opts.Ephemeral {
		if s.tempRoot, err = os.MkdirTemp("", "pgembed-"); err != nil {
			return nil, fmt.Errorf("start postgres: %w", err)
		}
		if err := acct.chown(s.tempRoot); err != nil {
			return nil, fmt.Errorf("start postgres: %w", err)
		}
		s.dataDir = filepath.Join(s.tempRoot, "data")
	} else if opts.DataDir == "" {
		return nil, errors.New("start postgres: no data directory (Options.DataDir)")
	} else if s.dataDir, err = filepath.Abs(opts.DataDir); err != nil {
		return nil, fmt.Errorf("start postgres: data directory: %w", err)
	} else if err := s.chooseDataDir(acct, opts.FallbackRoot); err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	if err := prepareDataDir(s.dataDir, acct); err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	if _, err := os.Stat(filepath.Join(s.dataDir, "PG_VERSION")); errors.Is(err, fs.ErrNotExist) {
		if opts.Primary != nil {
			log.Info("copying the primary for a standby", "data_dir", s.dataDir, "primary_port", opts.Primary.Port())
			err = baseBackup(startCtx, bins, acct, s.dataDir, opts.Primary, opts.Ephemeral)
		} else {
			log.Info("creating PostgreSQL cluster", "data_dir", s.dataDir, "initdb", bins.initdb)
			err = initCluster(startCtx, bins, acct, s.dataDir, opts.Ephemeral)
		}
		if err != nil {
			return nil, err
		}
	}
	if err := removeStalePID(s.dataDir, log); err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	if err := s.chooseSocketDir(acct); err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}

	if err := s.launchWithRetry(startCtx, bins, acct, opts); err != nil {
		return nil, err
	}
	if err := s.createDatabase(startCtx); err != nil {
		return nil, err
	}
	go s.stopWhenDone(ctx)
	log.Info("PostgreSQL started", "data_dir", s.dataDir, "port", s.port, "log", s.logPath,
		"ephemeral", opts.Ephemeral, "elapsed", time.Since(began).Round(time.Millisecond))
	return s, nil
}

// URL returns a pgx URL for DatabaseName over the unix socket.
func (s *Server) URL() string { return s.urlFor(DatabaseName) }

// DataDir returns the absolute data directory.
func (s *Server) DataDir() string { return s.dataDir }

// Port returns the TCP port on 127.0.0.1.
func (s *Server) Port() int { return s.port }

// Stop shuts the server down (fast shutdown: open sessions are disconnected) and waits for
// it to exit. When ctx ends first the server is aborted. An ephemeral cluster is removed.
// Calling Stop again returns the first call's result.
func (s *Server) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() { s.stopErr = s.stop(ctx) })
	return s.stopErr
}

func (s *Server) stop(ctx context.Context) error {
	var err error
	if s.cmd != nil {
		err = s.shutdown(ctx)
	}
	if s.logFile != nil {
		s.logFile.Close()
	}
	for _, dir := range []string{s.tempSock, s.tempRoot} {
		if dir != "" {
			if rmErr := os.RemoveAll(dir); rmErr != nil {
				err = errors.Join(err, fmt.Errorf("stop postgres: %w", rmErr))
			}
		}
	}
	if err == nil && s.cmd != nil { // a start that failed before launching stopped nothing
		s.log.Info("PostgreSQL stopped", "data_dir", s.dataDir)
	}
	return err
}

func (s *Server) shutdown(ctx context.Context) error {
	select {
	case <-s.exited:
		return fmt.Errorf("postgres had already exited (%v)%s", s.exitErr, s.logTail())
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGINT) // fast shutdown
	select {
	case <-s.exited:
		return nil
	case <-ctx.Done():
	}
	// The caller cannot wait any longer: immediate shutdown (crash recovery on next start),
	// then kill.
	_ = s.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	return fmt.Errorf("stop postgres: fast shutdown did not finish, aborted: %w", ctx.Err())
}

func (s *Server) stopWhenDone(ctx context.Context) {
	select {
	case <-ctx.Done():
		stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.Stop(stopCtx); err != nil {
			s.log.Error("stopping PostgreSQL", "err", err)
		}
	case <-s.exited:
	}
}

func (s *Server) urlFor(database string) string {
	q := url.Values{
		"host":    {s.socketDir},
		"port":    {strconv.Itoa(s.port)},
		"sslmode": {"disable"},
	}
	u := url.URL{Scheme: "postgres", User: url.User(superuser), Path: "/" + database, RawQuery: q.Encode()}
	return u.String()
}

// chooseDataDir moves s.dataDir to its fallback under fallbackRoot when the server's OS user
// cannot reach it, and says so.
func (s *Server) chooseDataDir(acct *account, fallbackRoot string) error {
	dir, reason, err := acct.chooseDataDir(s.dataDir, fallbackRoot)
	if err != nil || dir == s.dataDir {
		return err
	}
	if err := claimFallback(dir, s.dataDir); err != nil {
		return err
	}
	s.log.Info("embedded PostgreSQL data folder", "data_dir", dir, "instead_of", s.dataDir, "reason", reason)
	s.dataDir = dir
	return nil
}

// prepareDataDir creates the data directory with the mode PostgreSQL demands and gives it to
// the server's OS user.
func prepareDataDir(dir string, acct *account) error {
	// Parents we create must stay searchable by the server's user; the data directory itself
	// is private.
	if err := mkdirParents(filepath.Dir(dir)); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("data directory: %w", err)
	}
	if err := acct.checkSearchable(dir); err != nil {
		return err
	}
	if err := acct.chownTree(dir); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	// PostgreSQL refuses a data directory readable by others.
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	return nil
}

// mkdirParents creates dir and its missing parents with mode 0755 whatever the umask, so the
// server's OS user can pass through them. Folders that exist already are left as they are.
func mkdirParents(dir string) error {
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := mkdirParents(filepath.Dir(dir)); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil // made meanwhile by someone else: theirs
		}
		return err
	}
	return os.Chmod(dir, 0o755)
}

// chooseSocketDir puts the socket in the data directory, private to the server's user, unless
// that path is too long for a socket; then in a private temporary directory.
func (s *Server) chooseSocketDir(acct *account) error {
	if len(s.dataDir)+len("/.s.PGSQL.65535") < maxSocketPath {
		s.socketDir = s.dataDir
		return nil
	}
	dir, err := os.MkdirTemp("", "pgembed-sock-")
	if err != nil {
		return fmt.Errorf("socket directory: %w", err)
	}
	s.tempSock, s.socketDir = dir, dir
	return acct.chown(dir)
}

func initCluster(ctx context.Context, bins binaries, acct *account, dataDir string, ephemeral bool) error {
	password, err := randomPassword()
	if err != nil {
		return fmt.Errorf("initdb: %w", err)
	}
	// initdb must be able to read the file as the server user, and the data directory must
	// still be empty, hence a temporary file outside it.
	pwFile, err := os.CreateTemp("", "pgembed-pw-")
	if err != nil {
		return fmt.Errorf("initdb: %w", err)
	}
	defer os.Remove(pwFile.Name())
	_, err = pwFile.WriteString(password + "\n")
	if closeErr := pwFile.Close(); err == nil {
		err = closeErr
	}
	if err == nil {
		err = acct.chown(pwFile.Name())
	}
	if err != nil {
		return fmt.Errorf("initdb: password file: %w", err)
	}

	args := []string{"-D", dataDir, "-U", superuser, "-E", "UTF8", "--locale=C",
		"--auth-local=trust", "--auth-host=scram-sha-256", "--pwfile=" + pwFile.Name()}
	if ephemeral {
		args = append(args, "--no-sync")
	}
	cmd := exec.CommandContext(ctx, bins.initdb, args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := configure(cmd, acct, dataDir); err != nil {
		return fmt.Errorf("initdb: %w", err)
	}
	done := make(chan error, 1)
	if err := startPinned(cmd, func(err error) { done <- err }); err != nil {
		return fmt.Errorf("initdb: %w", err)
	}
	if err := <-done; err != nil {
		return fmt.Errorf("initdb %s: %w\n%s", dataDir, err, lastLines(out.String(), 20))
	}

	pwPath := filepath.Join(dataDir, PasswordFile)
	if err := os.WriteFile(pwPath, []byte(password+"\n"), 0o600); err != nil {
		return fmt.Errorf("initdb: %w", err)
	}
	return acct.chown(pwPath)
}

// baseBackup makes dataDir (empty) a hot standby of primary: pg_basebackup -R over TCP as the
// superuser, WAL streamed alongside so the copy is consistent on its own.
func baseBackup(ctx context.Context, bins binaries, acct *account, dataDir string, primary *Server, ephemeral bool) error {
	if bins.basebackup == "" {
		return fmt.Errorf("standby: no pg_basebackup beside %s: install PostgreSQL's client programs", bins.postgres)
	}
	pw, err := os.ReadFile(filepath.Join(primary.DataDir(), PasswordFile))
	if err != nil {
		return fmt.Errorf("standby: the primary's password: %w", err)
	}
	args := []string{"-D", dataDir, "-h", "127.0.0.1", "-p", strconv.Itoa(primary.Port()), "-U", superuser,
		"--no-password", "--write-recovery-conf", "--wal-method=stream", "--checkpoint=fast"}
	if ephemeral {
		args = append(args, "--no-sync")
	}
	cmd := exec.CommandContext(ctx, bins.basebackup, args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := configure(cmd, acct, dataDir); err != nil {
		return fmt.Errorf("pg_basebackup: %w", err)
	}
	cmd.Env = append(cmd.Env, "PGPASSWORD="+strings.TrimSpace(string(pw)))
	done := make(chan error, 1)
	if err := startPinned(cmd, func(err error) { done <- err }); err != nil {
		return fmt.Errorf("pg_basebackup: %w", err)
	}
	if err := <-done; err != nil {
		return fmt.Errorf("pg_basebackup into %s: %w\n%s", dataDir, err, lastLines(out.String(), 20))
	}
	return nil
}

// removeStalePID deletes a postmaster.pid that no running server stands behind. PostgreSQL
// ignores a lock file whose process is gone, but not one whose pid a new, unrelated process
// reuses (common in containers); it then refuses to start forever.
func removeStalePID(dataDir string, log *slog.Logger) error {
	path := filepath.Join(dataDir, "postmaster.pid")
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if dirInUse(dataDir) {
		return nil // a server, or a backend of a killed one, still runs there: PostgreSQL decides
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale lock file: %w", err)
	}
	log.Info("removed stale PostgreSQL lock file", "path", path)
	return nil
}

// launchError is a postmaster that exited during startup; tail is the end of its log.
type launchError struct {
	exitErr error
	tail    string
}

func (e *launchError) Error() string {
	return fmt.Sprintf("postgres exited during startup (%v)%s", e.exitErr, e.tail)
}

// portTaken: another process holds the TCP port or the socket lock of the same name.
func (e *launchError) portTaken() bool {
	return strings.Contains(e.tail, "Address already in use") || strings.Contains(e.tail, ".s.PGSQL.")
}

// dataDirBusy: a previous server of this data directory has not finished exiting.
func (e *launchError) dataDirBusy() bool {
	return strings.Contains(e.tail, `lock file "postmaster.pid" already exists`) ||
		strings.Contains(e.tail, "pre-existing shared memory block")
}

// launchWithRetry retries a startup that lost a race: a free port taken in the meantime, or
// the processes of a killed server still exiting.
func (s *Server) launchWithRetry(ctx context.Context, bins binaries, acct *account, opts Options) error {
	busySince := time.Time{}
	for attempt := 1; ; attempt++ {
		port := opts.Port
		if port == 0 {
			var err error
			if port, err = freePort(); err != nil {
				return fmt.Errorf("start postgres: %w", err)
			}
		}
		err := s.launch(ctx, bins, acct, port, opts)
		var le *launchError
		switch {
		case err == nil:
			return nil
		case !errors.As(err, &le):
			return err
		case opts.Port == 0 && attempt < 5 && le.portTaken():
			continue
		case le.dataDirBusy():
			if busySince.IsZero() {
				busySince = time.Now()
			}
			if time.Since(busySince) > 5*time.Second {
				return fmt.Errorf("start postgres in %s: another server still uses it: %w", s.dataDir, err)
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("start postgres: %w", err)
			case <-time.After(200 * time.Millisecond):
			}
		default:
			return fmt.Errorf("start postgres in %s: %w", s.dataDir, err)
		}
	}
}

func (s *Server) launch(ctx context.Context, bins binaries, acct *account, port int, opts Options) error {
	if err := s.openLog(acct); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	args := []string{"-D", s.dataDir, "-p", strconv.Itoa(port), "-h", "127.0.0.1", "-k", s.socketDir,
		"-c", "unix_socket_permissions=0700", "-c", "logging_collector=off"}
	if opts.Ephemeral {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	for _, k := range slices.Sorted(maps.Keys(opts.Settings)) {
		args = append(args, "-c", k+"="+opts.Settings[k])
	}
	cmd := exec.Command(bins.postgres, args...)
	cmd.Stdout, cmd.Stderr = s.logFile, s.logFile
	if err := configure(cmd, acct, s.dataDir); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	exited := make(chan struct{})
	s.cmd, s.exited, s.port = cmd, exited, port
	if err := startPinned(cmd, func(err error) { s.exitErr = err; close(exited) }); err != nil {
		s.cmd = nil
		return fmt.Errorf("start postgres: %w", err)
	}
	return s.waitReady(ctx)
}

// openLog starts a fresh LogFile, keeping the previous run's as LogFile.1.
func (s *Server) openLog(acct *account) error {
	if s.logFile != nil {
		s.logFile.Close()
	}
	s.logPath = filepath.Join(s.dataDir, LogFile)
	if err := os.Rename(s.logPath, s.logPath+".1"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("rotate log: %w", err)
	}
	f, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	s.logFile = f
	return acct.chown(s.logPath)
}

func (s *Server) waitReady(ctx context.Context) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		connCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgx.Connect(connCtx, s.urlFor("postgres"))
		cancel()
		if err == nil {
			return conn.Close(ctx)
		}
		select {
		case <-s.exited:
			return &launchError{exitErr: s.exitErr, tail: s.logTail()}
		case <-ctx.Done():
			return fmt.Errorf("start postgres: not accepting connections (%v): %w%s", err, ctx.Err(), s.logTail())
		case <-tick.C:
		}
	}
}

func (s *Server) createDatabase(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, s.urlFor("postgres"))
	if err != nil {
		return fmt.Errorf("start postgres: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	// A standby is read-only and has the primary's databases.
	var standby bool
	if err := conn.QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&standby); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	if standby {
		return nil
	}
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`,
		DatabaseName).Scan(&exists); err != nil {
		return fmt.Errorf("start postgres: look up database %s: %w", DatabaseName, err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{DatabaseName}.Sanitize()); err != nil {
		return fmt.Errorf("start postgres: create database %s: %w", DatabaseName, err)
	}
	return nil
}

// logTail returns the end of the server log, formatted to follow an error message.
func (s *Server) logTail() string {
	if s.logPath == "" {
		return ""
	}
	b, err := readTail(s.logPath, 4096)
	if err != nil || len(b) == 0 {
		return ""
	}
	return fmt.Sprintf("\nlast lines of %s:\n%s", s.logPath, lastLines(string(b), 15))
}

func readTail(path string, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	off := max(fi.Size()-n, 0)
	b := make([]byte, fi.Size()-off)
	_, err = f.ReadAt(b, off)
	return b, err
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}

// configure sets how every PostgreSQL child runs: as the server user, in the data directory
// (a root working directory may be closed to that user), without our PG* variables.
func configure(cmd *exec.Cmd, acct *account, dir string) error {
	attr, err := procAttr(acct)
	if err != nil {
		return err
	}
	cmd.SysProcAttr = attr
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	return nil
}

// startPinned starts cmd from a goroutine locked to its OS thread until the child exits, then
// calls onExit. Linux sends Pdeathsig when the thread that forked the child ends, and the Go
// runtime ends a thread whenever a goroutine locked to it exits; pinning keeps the signal for
// the death of this process only.
func startPinned(cmd *exec.Cmd, onExit func(error)) error {
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		onExit(cmd.Wait())
	}()
	return <-started
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomPassword() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}
