//go:build faults

package faults_test

// nginx in front of replicas as a child process of the test, with the configuration of
// internal/nginxconf (README "Running several replicas" points there).

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vehicle-data/vehicle-data/internal/nginxconf"
)

// proxy is nginx as a child process on a loopback port, proxying to upstreams.
type proxy struct {
	t    testing.TB
	dir  string
	addr string
	base string // http://127.0.0.1:port
	p    *proc
}

// startNginx writes the configuration into a folder of its own and starts nginx; cleanup
// stops it. nginx comes from `make deps` (Debian's package); a missing one is a failure.
func startNginx(t testing.TB, upstreams []string) *proxy {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/nginx"); err != nil {
			t.Fatal("nginx is not installed: run make deps (Debian's nginx package)")
		}
	}
	// Under the suite's folder (0755), not t.TempDir's 0700 parents, in case nginx runs as
	// another user; removed with the suite's folder.
	dir, err := os.MkdirTemp(suite.dir, "nginx-")
	if err != nil {
		t.Fatal(err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	px := &proxy{t: t, dir: dir, addr: fmt.Sprintf("127.0.0.1:%d", port)}
	px.base = "http://" + px.addr
	var conf bytes.Buffer
	if err := nginxconf.Write(&conf, nginxconf.Config{Dir: dir, Listen: px.addr, Upstreams: upstreams}); err != nil {
		t.Fatal(err)
	}
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, conf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	// -e: the error log before the configuration is read is ours too, not /var/log/nginx's.
	cmd := exec.Command(bin, "-p", dir, "-c", confPath, "-e", filepath.Join(dir, "error.log"), "-g", "daemon off;")
	out, err := os.Create(filepath.Join(dir, "stderr.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if px.p, err = launch(cmd); err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	t.Cleanup(px.stop)

	hc := newHTTPClient(2 * time.Second)
	defer hc.CloseIdleConnections()
	for deadline := time.Now().Add(20 * time.Second); ; {
		if status, _, err := drain(hc.Get(px.base + "/healthz")); err == nil && status == http.StatusOK {
			return px
		}
		select {
		case <-px.p.exited:
			t.Fatalf("nginx exited (%v)\n%s", px.p.err, px.logs())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not answer /healthz within 20s\n%s", px.logs())
		}
	}
}

// stop asks nginx for a fast shutdown (SIGTERM) and kills it after 10 s.
func (px *proxy) stop() {
	_ = px.p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-px.p.exited:
	case <-time.After(10 * time.Second):
		_ = px.p.cmd.Process.Signal(syscall.SIGKILL)
		<-px.p.exited
		px.t.Errorf("nginx did not stop within 10s of SIGTERM and was killed")
	}
	if px.t.Failed() {
		px.t.Logf("nginx:\n%s", px.logs())
	}
}

// logs is the end of nginx's error log and its output.
func (px *proxy) logs() string {
	var b strings.Builder
	for _, name := range []string{"stderr.log", "error.log"} {
		data, _ := os.ReadFile(filepath.Join(px.dir, name))
		data = bytes.TrimSpace(data)
		if len(data) > 3000 {
			data = data[len(data)-3000:]
		}
		fmt.Fprintf(&b, "%s:\n%s\n", name, data)
	}
	return b.String()
}

// accessEntry is one request in nginx's access log.
type accessEntry struct {
	method, uri string
	status      int
	upstreams   []string // every replica tried, in order
	upStatuses  []string // their answers ("502" for a failed attempt)
}

// accessLog reads the access log, one entry per request, in order.
func (px *proxy) accessLog() ([]accessEntry, error) {
	data, err := os.ReadFile(filepath.Join(px.dir, "access.log"))
	if err != nil {
		return nil, err
	}
	var out []accessEntry
	for _, line := range strings.Split(string(data), "\n") {
		if line == "" {
			continue
		}
		f := strings.Split(line, "|")
		if len(f) != 6 {
			return nil, fmt.Errorf("access log: unexpected line %q", line)
		}
		e := accessEntry{method: f[0], uri: f[1], upstreams: splitList(f[3]), upStatuses: splitList(f[4])}
		if _, err := fmt.Sscan(f[2], &e.status); err != nil {
			return nil, fmt.Errorf("access log: status of %q: %w", line, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// splitList splits "a, b" ($upstream_addr after a retry); "-" is no upstream.
func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" && part != "-" {
			out = append(out, part)
		}
	}
	return out
}

// errorLogCount counts the error log's lines containing s.
func (px *proxy) errorLogCount(s string) int {
	data, _ := os.ReadFile(filepath.Join(px.dir, "error.log"))
	return bytes.Count(data, []byte(s))
}
