//go:build faults

package faults_test

// nginx in front of replicas: the tested configuration (README "Running several replicas"
// points here), and nginx as a child process of the test.

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
	"text/template"
	"time"
)

// nginxConf is the proxy of three replicas as an operator would run it; only the paths
// (the test's folder) and the ports are the test's. Each directive says why it is there.
var nginxConf = template.Must(template.New("nginx.conf").Parse(`# vehicle-data behind nginx: the configuration the fault suite tests (TestReplicas*).

# The test's own: one process, so that the kernel's Pdeathsig takes all of nginx with the test
# if the test dies (workers outlive a killed master). In production keep the master process
# and "worker_processes auto"; everything below is the same.
master_process off;
worker_processes 1;
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/error.log error;

events {
    worker_connections 1024;
}

http {
    # Which replica answered, and every replica tried when nginx retried ($upstream_addr
    # lists them, comma-separated; $upstream_status their answers). The test reads it.
    log_format upstreams '$request_method|$uri|$status|$upstream_addr|$upstream_status|$request_time';
    access_log {{.Dir}}/access.log upstreams;
    # The test's folder for nginx's temporary files (it makes them at start, used or not).
    client_body_temp_path {{.Dir}}/client_body;
    proxy_temp_path {{.Dir}}/proxy;
    fastcgi_temp_path {{.Dir}}/fastcgi;
    uwsgi_temp_path {{.Dir}}/uwsgi;
    scgi_temp_path {{.Dir}}/scgi;

    upstream vehicle_data {
        # Round robin (the default), no stickiness: chunks, cursors' key, quotas and the purge
        # live in PostgreSQL, so any replica serves any request.
        #
        # max_fails=1 fail_timeout=1s: nginx (open source) has no active health check and never
        # reads /readyz. What takes a replica out is one failed attempt (a refused connection,
        # a reset, a connect timeout): it then gets nothing for fail_timeout, after which one
        # live request tries it again (and goes on to the next replica if it is still down, at
        # the cost of a refused connect). A short fail_timeout brings a restarted replica back
        # within a second of its start; it must be shorter than DRAIN_DELAY, so that in a
        # rolling restart the replica started last is back in rotation before the next one
        # stops listening (else, with every other replica out, nginx has "no live upstreams").
{{- range .Upstreams}}
        server {{.}} max_fails=1 fail_timeout=1s;
{{- end}}

        # Kept-alive connections to the replicas: no handshake, and no TIME_WAIT socket on the
        # proxy, per request. A kept-alive connection is only safe if the replica never closes it
        # while nginx may be sending on it (a POST on it would be lost, not retried):
        # - in ordinary operation the replica's idle timeout (2 min) is longer than nginx's;
        # - while draining (DRAIN_DELAY) the replica answers with Connection: close, so nginx
        #   drops each connection after its request, and keepalive_timeout below (shorter than
        #   DRAIN_DELAY) closes the ones left idle, before the replica closes what is left.
        keepalive 16;
        keepalive_timeout 1s;
    }

    server {
        listen {{.Listen}};
        # A chunk is up to MAX_CHUNK_BYTES (16 MiB) plus the form's other fields and part
        # headers, for which the server allows 1 MiB. Raise both together.
        client_max_body_size 17m;

        location / {
            proxy_pass http://vehicle_data;
            # HTTP/1.1 without "Connection: close": needed for the keepalive above.
            proxy_http_version 1.1;
            proxy_set_header Connection "";

            # Page links (next, previous) are built from Host and X-Forwarded-Proto. $http_host
            # is the client's Host with its port ($host would drop the port); the scheme is
            # nginx's own, whatever a client sends.
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;

            # Retries. nginx replays a request on the next replica for the conditions listed,
            # but never a POST of which anything was sent (unless non_idempotent is listed, and
            # it is not): a POST that reached a replica may have done its work (a record
            # created, a chunk stored, a finalize still running on a replica that lost its
            # client), and its replay would answer 409 or 404 for work that succeeded.
            # - error: a refused connection (a replica restarting or stopped: nothing was sent,
            #   so every method is retried, POSTs too); a reset or an early close (GETs only).
            # - timeout: the connect timeout below (nothing sent). A read timeout comes after
            #   proxy_next_upstream_timeout, so a slow request is never run twice.
            # - http_502: a 502 from whatever stands in front of a replica (the replica itself
            #   never answers 502); GETs only.
            # Not http_503: a replica's 503 is a documented refusal with Retry-After (one of its
            # limits is full, or the database is down). Retrying it would count as a failure and
            # take that replica out for fail_timeout for all traffic (one full export slot would
            # empty a replica), and triple the load when the database is down. The client waits
            # Retry-After and retries, as the uploader and generated clients do.
            proxy_next_upstream error timeout http_502;
            proxy_next_upstream_tries 3;
            proxy_next_upstream_timeout 10s;

            # A replica on the local network answers a SYN at once; a dead host is given up
            # after 2 s and the request goes to the next replica.
            proxy_connect_timeout 2s;
            # The longest silence between two reads from a replica: a finalize answers only when
            # done (about 20 s for 1M rows here); the server's own write timeout is 5 min.
            proxy_read_timeout 300s;
            proxy_send_timeout 60s;

            # Request bodies are read whole before a replica is chosen (the default): a slow
            # client's chunk does not hold a replica's connection, and a refused connection can
            # be retried with the body.
            proxy_request_buffering on;
            # Responses are passed on as they come, not spooled: an export goes at its client's
            # pace, so the replica's stall timeout and export slots see the real client, and
            # nginx does not write up to 1 GiB per export into its temporary folder.
            proxy_buffering off;
        }
    }
}
`))

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
	if err := nginxConf.Execute(&conf, map[string]any{"Dir": dir, "Listen": px.addr, "Upstreams": upstreams}); err != nil {
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
