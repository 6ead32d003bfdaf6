package bench

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/vehicle-data/vehicle-data/internal/config"
	"github.com/vehicle-data/vehicle-data/internal/nginxconf"
	"github.com/vehicle-data/vehicle-data/internal/records"
	"github.com/vehicle-data/vehicle-data/internal/sample"
	"github.com/vehicle-data/vehicle-data/internal/uploader"
)

// ReplicaOptions configure `vehicle-data-bench replicas`.
type ReplicaOptions struct {
	ListOptions
	Replicas      []int // replica counts to measure; nil means 1, 2, 3
	ListConns     int   // clients of the list mix; 0 means 32
	IngestWorkers int   // uploaders of the ingest mix; 0 means 8
}

// capacityPrefix starts the vehicle id of every upload of the ingest mix: the rows are deleted
// again after each replica count, so that the fleet database stays as bench-list loaded it.
const capacityPrefix = "capacity-"

// ingestSizes are the rows of the ingest mix's uploads: a vehicle sending a sample a second and
// uploading every minute, every 10 minutes and every hour (docs/scaling.md, "Worked sizing").
var ingestSizes = []int{60, 600, 3600}

// The server's defaults of --db-conns and --max-finalizes, which the split configuration
// divides among the replicas.
var (
	defaultDBConns      = config.Default().Limits.DBConns
	defaultMaxFinalizes = config.Default().Limits.MaxFinalizes
)

// capacityMix is one timed run's traffic: the list mix, uploads of one size, or both.
type capacityMix struct {
	name       string
	list       bool
	uploadRows int // 0: no uploads
}

func capacityMixes() []capacityMix {
	ms := []capacityMix{{name: "list", list: true}}
	for _, rows := range ingestSizes {
		ms = append(ms, capacityMix{name: fmt.Sprintf("ingest %d rows", rows), uploadRows: rows})
	}
	return append(ms, capacityMix{name: "list + ingest 600 rows", list: true, uploadRows: 600})
}

// RunReplicas measures what one, two and three `vehicle-data serve` replicas behind nginx (the
// configuration of internal/nginxconf) serve on this machine's one PostgreSQL: the list mix of
// bench-list on its 10M-row database, an ingest mix of small uploads (the uploader CLI's
// requests), and both at once, with the CPU time each kind of process used in each run. The
// same list SQL through pgbench is the database's limit, measured in the same run.
func RunReplicas(ctx context.Context, opts ReplicaOptions, w io.Writer) error {
	opts.Vehicles = cmp.Or(opts.Vehicles, 10)
	opts.Duration = cmp.Or(opts.Duration, 20*time.Second)
	opts.ListConns = cmp.Or(opts.ListConns, 32)
	opts.IngestWorkers = cmp.Or(opts.IngestWorkers, 8)
	if opts.Replicas == nil {
		opts.Replicas = []int{1, 2, 3}
	}
	for _, n := range opts.Replicas {
		if n < 1 || n > 8 {
			return fmt.Errorf("replicas: %d is not between 1 and 8", n)
		}
	}
	o, err := opts.withDefaults()
	if err != nil {
		return err
	}
	opts.Options = o
	opts.Options.Keep = opts.Options.Keep || opts.Reuse
	nginx, err := findNginx()
	if err != nil {
		return err
	}
	pgbench, err := findTool("pgbench", "")
	if err != nil {
		return err
	}
	l, err := openLabNoSample(ctx, opts.Options)
	if err != nil {
		return err
	}
	defer l.close()
	dbURL, vehicles, err := l.loadFleet(ctx, opts.ListOptions)
	if err != nil {
		return err
	}
	if err := l.removeCapacityRows(ctx, dbURL); err != nil {
		return err
	}

	fmt.Fprintf(w, "replicas benchmark: %d vehicles x %s samples; %s\n", len(vehicles), thousands(int64(opts.Rows)), l.env.Postgres)
	fmt.Fprintf(w, "machine: %d CPUs, load before: %s\n", l.env.CPUs, loadAverage())
	fmt.Fprintf(w, "each run %s; list mix: %d clients looping over bench-list's 64 queries; ingest mix: %d uploaders, "+
		"each its own vehicle, sending files of one size one after the other (upload_status, one chunk, finalize: the uploader CLI's requests); "+
		"replicas run with the default settings (--db-conns %d --max-finalizes %d each) unless the mix says otherwise\n\n",
		opts.Duration, opts.ListConns, opts.IngestWorkers, defaultDBConns, defaultMaxFinalizes)

	mix := listMix(vehicles)
	pool, tracer, err := tracedPool(ctx, dbURL)
	if err != nil {
		return err
	}
	scripts, err := l.pgbenchScripts(ctx, "replicas-list", mix, records.NewStore(pool, records.StoreOptions{}), tracer)
	pool.Close()
	if err != nil {
		return err
	}
	var runs []capacityRun
	l.logf("pgbench: the list mix's SQL, %d clients", opts.ListConns)
	var tps float64
	cpu, err := measureCPU(func() error {
		var err error
		tps, err = runPgbench(ctx, pgbench, dbURL, scripts, opts.ListConns, opts.Duration)
		return err
	})
	if err != nil {
		return err
	}
	runs = append(runs, capacityRun{mix: "list SQL, pgbench", tps: tps, cpu: cpu})

	var small []smallUpload
	for _, n := range opts.Replicas {
		rs, sm, err := l.measureReplicas(ctx, nginx, dbURL, mix, n, opts)
		if err != nil {
			return err
		}
		runs = append(runs, rs...)
		if small == nil {
			small = sm
		}
	}
	writeCapacity(w, runs, opts)
	writeSmallUploads(w, small)
	fmt.Fprintf(w, "load after: %s\n", loadAverage())
	return nil
}

// capacityRun is one timed run: the list mix, the ingest mix or both, through n replicas.
type capacityRun struct {
	replicas int // 0 for pgbench
	mix      string
	tps      float64 // pgbench's
	list     *latencies
	ingest   *ingestLoad
	cpu      cpuUse
}

// splitSettings are the server flags of one of n replicas that share the database's budget:
// the default connections and finalizes of one replica, divided among them.
func splitSettings(n int) string {
	conns, finalizes := (defaultDBConns+n-1)/n, max(1, defaultMaxFinalizes/n)
	return fmt.Sprintf("--db-conns %d --max-finalizes %d", conns, finalizes)
}

// measureReplicas runs every capacity mix through n replicas with the default settings behind
// nginx and, with more than one, the list mix again with --db-conns divided among them; at one
// replica it first times small uploads one at a time. The ingested rows are removed at the end.
func (l *lab) measureReplicas(ctx context.Context, nginx, dbURL string, mix []mixQuery, n int, opts ReplicaOptions) (runs []capacityRun, small []smallUpload, err error) {
	defer func() { err = errors.Join(err, l.removeCapacityRows(ctx, dbURL)) }()
	ing := newIngestMix(filepath.Join(l.dir, fmt.Sprintf("uploads-%d", n)), n, opts.IngestWorkers, opts.Seed)
	err = l.withReplicas(ctx, nginx, dbURL, mix, n, nil, func(base string) error {
		if n == 1 {
			l.logf("1 replica: small uploads one at a time")
			var err error
			if small, err = ing.oneAtATime(ctx, base); err != nil {
				return err
			}
		}
		for _, m := range capacityMixes() {
			r, err := l.capacityRun(ctx, base, mix, ing, n, m, opts)
			if err != nil {
				return err
			}
			runs = append(runs, r)
		}
		return nil
	})
	if err != nil || n == 1 {
		return runs, small, err
	}
	// The database's budget divided among the replicas, as the README advises for one small
	// database: the same connections and finalizes in all as one replica has.
	split := splitSettings(n)
	err = l.withReplicas(ctx, nginx, dbURL, mix, n, strings.Fields(split), func(base string) error {
		for _, m := range []capacityMix{
			{name: "list, " + split, list: true},
			{name: "ingest 3600 rows, " + split, uploadRows: 3600},
			{name: "list + ingest 600 rows, " + split, list: true, uploadRows: 600},
		} {
			r, err := l.capacityRun(ctx, base, mix, ing, n, m, opts)
			if err != nil {
				return err
			}
			runs = append(runs, r)
		}
		return nil
	})
	return runs, small, err
}

// withReplicas starts n replicas with flags and nginx in front, warms them up with the list mix
// and calls fn with nginx's URL; then it stops them all.
func (l *lab) withReplicas(ctx context.Context, nginx, dbURL string, mix []mixQuery, n int, flags []string, fn func(base string) error) (err error) {
	var upstreams []string
	for i := range n {
		s, err := l.startServer(ctx, dbURL, fmt.Sprintf("replicas-%d-%d", n, i+1), flags...)
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, s.stop()) }()
		upstreams = append(upstreams, strings.TrimPrefix(s.url, "http://"))
	}
	px, err := startProxy(ctx, nginx, filepath.Join(l.dir, fmt.Sprintf("nginx-%d", n)), upstreams)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, px.stop()) }()
	for _, q := range mix { // warm-up: caches, and each replica's prepared statements
		for range n {
			if _, err := get(ctx, px.url+q.Path); err != nil {
				return err
			}
		}
	}
	return fn(px.url)
}

// capacityRun times one mix through base for opts.Duration, with the CPU time it took.
func (l *lab) capacityRun(ctx context.Context, base string, mix []mixQuery, ing *ingestMix, n int, m capacityMix, opts ReplicaOptions) (capacityRun, error) {
	l.logf("%d replica(s): %s for %s", n, m.name, opts.Duration)
	run := capacityRun{replicas: n, mix: m.name}
	var err error
	run.cpu, err = measureCPU(func() error {
		var wg sync.WaitGroup
		if m.list {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := load(ctx, base, mix, opts.ListConns, opts.Duration)
				run.list = &r
			}()
		}
		if m.uploadRows > 0 {
			r := ing.run(ctx, base, opts.Duration, m.uploadRows)
			run.ingest = &r
		}
		wg.Wait()
		return ctx.Err()
	})
	if run.ingest != nil && run.ingest.err != nil {
		l.logf("%s: first failure: %v", m.name, run.ingest.err)
	}
	return run, err
}

// removeCapacityRows deletes what the ingest mix stored (the delete trigger keeps the rollups
// and figures right) and vacuums, so that every replica count starts from the loaded fleet.
func (l *lab) removeCapacityRows(ctx context.Context, dbURL string) error {
	like := quoteLiteral(capacityPrefix + "%")
	return l.pg.exec(ctx, dbURL,
		"DELETE FROM samples WHERE vehicle_key IN (SELECT vehicle_key FROM vehicles WHERE vehicle_id LIKE "+like+")",
		"DELETE FROM vehicles WHERE vehicle_id LIKE "+like,
		"DELETE FROM uploads WHERE vehicle_id LIKE "+like,
		"VACUUM (ANALYZE) samples", "VACUUM (ANALYZE) sample_five_minutes", "VACUUM (ANALYZE) sample_hours", "VACUUM (ANALYZE) sample_hour_states", "VACUUM (ANALYZE) vehicles")
}

// ingestMix is the uploaders: worker i sends files for its own vehicle, each starting a second
// after the last sample of the one before, as a vehicle's next upload would.
type ingestMix struct {
	dir     string
	workers []*uploaderState
	client  *http.Client
}

type uploaderState struct {
	vehicle string
	next    time.Time // first timestamp of its next file
	seq     int       // files written
	seed    int64
}

func newIngestMix(dir string, replicas, workers int, seed int64) *ingestMix {
	m := &ingestMix{dir: dir, client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 60 * time.Second}}
	for i := range workers {
		m.workers = append(m.workers, &uploaderState{
			vehicle: fmt.Sprintf("%s%d-%d", capacityPrefix, replicas, i+1),
			next:    time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
			seed:    seed + int64(i),
		})
	}
	return m
}

// ingestLoad is the outcome of one ingest run.
type ingestLoad struct {
	uploads, rows, bad int
	d                  []time.Duration // each upload, from its first request to the finalize answer
	wall               time.Duration
	err                error // the first failure
}

// upload writes the worker's next file of rows rows and uploads it through base.
func (m *ingestMix) upload(ctx context.Context, u *uploaderState, base string, rows int) error {
	if err := os.MkdirAll(m.dir, 0o755); err != nil {
		return err
	}
	u.seq++
	path := filepath.Join(m.dir, fmt.Sprintf("%s-%d.csv", u.vehicle, u.seq))
	var buf bytes.Buffer
	if err := sample.Write(&buf, sample.Options{VehicleID: u.vehicle, Rows: rows, Seed: u.seed + int64(u.seq)<<16, Start: u.next}); err != nil {
		return err
	}
	last, err := lastSampleTime(buf.Bytes())
	if err != nil {
		return err
	}
	u.next = last.Add(time.Second)
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return err
	}
	defer os.Remove(path)
	res, err := uploader.UploadFile(ctx, path, uploader.Options{
		Server: base, VehicleID: u.vehicle, HTTPClient: m.client,
		Retries: -1, // a retry would hide a refusal in the figures
	})
	if err != nil {
		return err
	}
	if res.RowsInserted != int64(rows) {
		return fmt.Errorf("upload of %d rows inserted %d (%d duplicate, %d invalid)", rows, res.RowsInserted, res.RowsDuplicate, res.RowsInvalid)
	}
	return nil
}

// lastSampleTime is the latest timestamp of a file sample.Write made (about 1% of its rows are
// out of order, so not simply the last line's).
func lastSampleTime(csv []byte) (time.Time, error) {
	var last time.Time
	lines := bytes.Split(bytes.TrimSpace(csv), []byte("\n"))
	for _, line := range lines[1:] {
		field, _, _ := bytes.Cut(line, []byte(","))
		t, err := time.Parse("2006-01-02 15:04:05", string(field)) // with any fraction
		if err != nil {
			return time.Time{}, fmt.Errorf("generated file: %w", err)
		}
		if t.After(last) {
			last = t
		}
	}
	return last, nil
}

// run starts uploads of rows rows from every worker for d and waits for those under way: cut
// off, a finalize would run on in its replica and take a slot from the next run.
func (m *ingestMix) run(ctx context.Context, base string, d time.Duration, rows int) ingestLoad {
	var (
		mu  sync.Mutex
		out ingestLoad
		wg  sync.WaitGroup
	)
	began := time.Now()
	end := began.Add(d)
	for _, u := range m.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && time.Now().Before(end) {
				t0 := time.Now()
				err := m.upload(ctx, u, base, rows)
				if ctx.Err() != nil {
					break
				}
				mu.Lock()
				out.uploads++
				out.d = append(out.d, time.Since(t0))
				if err != nil {
					out.bad++
					out.err = cmp.Or(out.err, err)
				} else {
					out.rows += rows
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	out.wall = time.Since(began)
	return out
}

// smallUpload is the unloaded cost of one upload of a size.
type smallUpload struct {
	rows   int
	median time.Duration
}

// oneAtATime times 10 uploads of each size, one after the other, by the first worker.
func (m *ingestMix) oneAtATime(ctx context.Context, base string) ([]smallUpload, error) {
	var out []smallUpload
	for _, rows := range ingestSizes {
		var ds []time.Duration
		for range 11 {
			t0 := time.Now()
			if err := m.upload(ctx, m.workers[0], base, rows); err != nil {
				return nil, err
			}
			ds = append(ds, time.Since(t0))
		}
		ds = ds[1:] // the first is a warm-up
		slices.Sort(ds)
		out = append(out, smallUpload{rows: rows, median: ds[len(ds)/2]})
	}
	return out, nil
}

func writeCapacity(w io.Writer, runs []capacityRun, opts ReplicaOptions) {
	fmt.Fprintf(w, "throughput through nginx (one process), %s per run\n", opts.Duration)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "replicas\tmix\tlist req/s\tp50 ms\tp99 ms\tnon-2xx\tuploads/s\trows/s\tupload p50 ms\tp99 ms\tfailed\t")
	for _, r := range runs {
		reps := "-"
		if r.replicas > 0 {
			reps = fmt.Sprint(r.replicas)
		}
		fmt.Fprintf(tw, "%s\t%s\t", reps, r.mix)
		switch {
		case r.tps > 0:
			fmt.Fprintf(tw, "%.1f\t\t\t\t", r.tps)
		case r.list != nil:
			fmt.Fprintf(tw, "%.1f\t%s\t%s\t%d\t", float64(r.list.n)/r.list.wall.Seconds(), ms(r.list.pct(.5)), ms(r.list.pct(.99)), r.list.bad)
		default:
			fmt.Fprint(tw, "\t\t\t\t")
		}
		if g := r.ingest; g != nil {
			lat := latencies{d: g.d}
			fmt.Fprintf(tw, "%.1f\t%s\t%s\t%s\t%d\t", float64(g.uploads-g.bad)/g.wall.Seconds(), thousands(int64(float64(g.rows)/g.wall.Seconds())),
				ms(lat.pct(.5)), ms(lat.pct(.99)), g.bad)
		} else {
			fmt.Fprint(tw, "\t\t\t\t\t")
		}
		fmt.Fprintln(tw)
	}
	_ = tw.Flush()

	fmt.Fprintf(w, "\nwhere the time goes: CPU cores in use, averaged over each run (of %d; from /proc)\n", cpuCount())
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "replicas\tmix\t%s\tidle\t\n", strings.Join(cpuGroups, "\t"))
	for _, r := range runs {
		reps := "-"
		if r.replicas > 0 {
			reps = fmt.Sprint(r.replicas)
		}
		fmt.Fprintf(tw, "%s\t%s\t", reps, r.mix)
		for _, g := range cpuGroups {
			fmt.Fprintf(tw, "%.2f\t", r.cpu.cores[g])
		}
		fmt.Fprintf(tw, "%.2f\t\n", r.cpu.idle)
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
}

func writeSmallUploads(w io.Writer, small []smallUpload) {
	if len(small) == 0 {
		return
	}
	fmt.Fprintln(w, "one upload at a time through nginx and one replica (status, chunk, finalize; median of 10)")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "rows\tms\trows/s\t")
	for _, s := range small {
		fmt.Fprintf(tw, "%d\t%s\t%s\t\n", s.rows, ms(s.median), thousands(int64(float64(s.rows)/s.median.Seconds())))
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
}

// proxyProc is nginx as a child process.
type proxyProc struct {
	cmd    *exec.Cmd
	dir    string
	url    string
	exited chan struct{}
}

func findNginx() (string, error) {
	for _, p := range []string{"nginx", "/usr/sbin/nginx"} {
		if bin, err := exec.LookPath(p); err == nil {
			return bin, nil
		}
	}
	return "", errors.New("nginx is not installed: run make deps (Debian's nginx package)")
}

// startProxy writes nginxconf's configuration for upstreams into dir and starts nginx on a free
// loopback port, waiting until it answers /healthz.
func startProxy(ctx context.Context, bin, dir string, upstreams []string) (*proxyProc, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	var conf bytes.Buffer
	if err := nginxconf.Write(&conf, nginxconf.Config{Dir: dir, Listen: addr, Upstreams: upstreams}); err != nil {
		return nil, err
	}
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, conf.Bytes(), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-p", dir, "-c", confPath, "-e", filepath.Join(dir, "error.log"), "-g", "daemon off;")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start nginx: %w", err)
	}
	p := &proxyProc{cmd: cmd, dir: dir, url: "http://" + addr, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	for deadline := time.Now().Add(20 * time.Second); ; {
		if status, err := get(ctx, p.url+"/healthz"); err == nil && status == http.StatusOK {
			return p, nil
		}
		select {
		case <-p.exited:
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			return nil, fmt.Errorf("nginx exited: %s", bytes.TrimSpace(b))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = p.stop()
			return nil, errors.New("nginx did not answer /healthz within 20s")
		}
	}
}

func (p *proxyProc) stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return nil
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return errors.New("nginx did not stop within 10s of SIGTERM and was killed")
	}
}
