package bench

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Bounds on the service's start and stop.
const (
	readyTimeout = 2 * time.Minute
	stopTimeout  = 30 * time.Second
)

// serverProc is a `vehicle-data serve` subprocess: the real binary, so that its memory
// is the service's alone.
type serverProc struct {
	cmd     *exec.Cmd
	url     string // http://127.0.0.1:port
	logPath string
	exited  chan struct{} // closed when the process has exited; waitErr is then set
	waitErr error
}

// startServer runs bin serve against dbURL on a free local port (migrating the database
// on start), with flags added, and waits until /readyz answers 200. The server's log goes to logPath.
func startServer(ctx context.Context, bin, dbURL, logPath string, flags ...string) (*serverProc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child keeps its own descriptor
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	// Not CommandContext: the server is stopped with SIGTERM by stop, not killed.
	cmd := exec.Command(bin, append([]string{"serve", "--addr", addr, "--database-url", dbURL, "--log-level", "warn"}, flags...)...)
	cmd.Env = serverEnv(os.Environ())
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group, so a Ctrl-C meant for the benchmark reaches the server only
	// through stop.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	s := &serverProc{cmd: cmd, url: "http://" + addr, logPath: logPath, exited: make(chan struct{})}
	go func() { s.waitErr = cmd.Wait(); close(s.exited) }()
	if err := s.waitReady(ctx); err != nil {
		_ = s.stop()
		return nil, err
	}
	return s, nil
}

// serverEnv keeps the runtime and system variables of env and drops everything else, so
// that settings of the caller's shell (API_TOKENS, MAX_CHUNK_BYTES, ...) do not change
// what is measured. GOGC, GOMEMLIMIT and the like pass on deliberately.
func serverEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case name == "PATH", name == "HOME", name == "TMPDIR", name == "LANG", name == "TZ",
			strings.HasPrefix(name, "GO"), strings.HasPrefix(name, "LC_"):
			out = append(out, kv)
		}
	}
	return out
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (s *serverProc) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	client := &http.Client{Timeout: 5 * time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/readyz", nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.exited:
			return fmt.Errorf("the server exited before it was ready (%v): %s", s.waitErr, s.logTail())
		case <-ctx.Done():
			return fmt.Errorf("the server was not ready within %s: %w: %s", readyTimeout, ctx.Err(), s.logTail())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *serverProc) pid() int { return s.cmd.Process.Pid }

// memory reads the server's VmRSS and VmHWM; it fails once the server has exited.
func (s *serverProc) memory() (procMemory, error) {
	select {
	case <-s.exited:
		return procMemory{}, fmt.Errorf("the server exited (%v): %s", s.waitErr, s.logTail())
	default:
	}
	return readProcMemory(s.pid())
}

// stop asks the server to shut down gracefully and kills it if it takes too long. An
// exit other than the clean one is an error.
func (s *serverProc) stop() error {
	select {
	case <-s.exited:
		return fmt.Errorf("the server had exited (%v): %s", s.waitErr, s.logTail())
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		if s.waitErr != nil {
			return fmt.Errorf("the server stopped with %v: %s", s.waitErr, s.logTail())
		}
		return nil
	case <-time.After(stopTimeout):
		_ = s.cmd.Process.Kill()
		<-s.exited
		return fmt.Errorf("the server did not stop within %s and was killed", stopTimeout)
	}
}

// logTail is the end of the server's log, for error messages.
func (s *serverProc) logTail() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return "no log: " + err.Error()
	}
	const keep = 2000
	b = bytes.TrimSpace(b)
	if len(b) > keep {
		b = b[len(b)-keep:]
	}
	if len(b) == 0 {
		return "empty log " + s.logPath
	}
	return fmt.Sprintf("log %s ends with:\n%s", s.logPath, b)
}
