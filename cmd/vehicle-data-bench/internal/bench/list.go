package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vehicle-data/vehicle-data/db/optional"
	"github.com/vehicle-data/vehicle-data/gen/db"
	"github.com/vehicle-data/vehicle-data/internal/database"
	"github.com/vehicle-data/vehicle-data/internal/records"
	"github.com/vehicle-data/vehicle-data/internal/sample"
)

// ListOptions configure `vehicle-data-bench list`.
type ListOptions struct {
	Options
	Vehicles int           // vehicles of Rows samples each; 0 means 10
	Duration time.Duration // of each loaded run; 0 means 30 s
	Reuse    bool          // keep and reuse the loaded database ("list") when it holds the rows
	// ShiftStateIndex creates the optional index of db/optional on the loaded database before
	// the server starts; without it, the run drops it (a reused database may have it).
	ShiftStateIndex bool
}

// RunList loads Vehicles x Rows samples into the real schema with \copy (the triggers keep every
// figure and rollup the service reads), then measures the dashboard's list mix and the chart's
// series mix through the real server, unloaded and at 8 and 32 connections, and the same SQL
// through pgbench as the database's own limit, all in one run. It writes its tables to w.
func RunList(ctx context.Context, opts ListOptions, w io.Writer) error {
	opts.Vehicles = cmp.Or(opts.Vehicles, 10)
	opts.Duration = cmp.Or(opts.Duration, 30*time.Second)
	o, err := opts.withDefaults()
	if err != nil {
		return err
	}
	opts.Options = o
	opts.Options.Keep = opts.Options.Keep || opts.Reuse
	l, err := openLabNoSample(ctx, opts.Options)
	if err != nil {
		return err
	}
	defer l.close()
	dbURL, vehicles, err := l.loadFleet(ctx, opts)
	if err != nil {
		return err
	}
	if err := setShiftStateIndex(ctx, dbURL, opts.ShiftStateIndex); err != nil {
		return err
	}
	srv, err := l.startServer(ctx, dbURL, "list-server")
	if err != nil {
		return err
	}
	defer srv.stop()
	pgbench, err := findTool("pgbench", l.psql.path)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "list benchmark: %d vehicles x %s samples; %s\n", len(vehicles), thousands(int64(opts.Rows)), l.env.Postgres)
	fmt.Fprintf(w, "machine: %d CPUs, load before: %s\n", l.env.CPUs, loadAverage())
	fmt.Fprintf(w, "optional index samples_shift_state_idx (--shift-state-index): %v\n\n", opts.ShiftStateIndex)

	pool, tracer, err := tracedPool(ctx, dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	store := records.NewStore(pool, records.StoreOptions{ShiftStateIndex: opts.ShiftStateIndex})

	listMix := listMix(vehicles)
	seriesMix := seriesMix(vehicles)
	for _, m := range []struct {
		name string
		mix  []mixQuery
	}{{"list", listMix}, {"series", seriesMix}} {
		if err := l.runMix(ctx, w, m.name, m.mix, srv.url, store, tracer, pgbench, dbURL, opts.Duration); err != nil {
			return err
		}
	}
	if err := l.runOrderings(ctx, w, vehicles, srv.url); err != nil {
		return err
	}
	if err := l.runCursors(ctx, w, vehicles, srv.url, int64(opts.Rows)); err != nil {
		return err
	}
	if err := l.runCounts(ctx, w, vehicles, store, tracer, pool); err != nil {
		return err
	}
	if err := l.runExports(ctx, w, vehicles, srv.url, store, tracer, dbURL); err != nil {
		return err
	}
	fmt.Fprintf(w, "load after: %s\n", loadAverage())
	return nil
}

// setShiftStateIndex creates or drops the optional index of db/optional.
func setShiftStateIndex(ctx context.Context, dbURL string, want bool) error {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	valid, err := db.New().HasShiftStateIndex(ctx, conn)
	if err != nil || valid == want {
		return err
	}
	// Not wanted, or left invalid by an interrupted build (CREATE ... IF NOT EXISTS would keep it).
	if _, err := conn.Exec(ctx, "DROP INDEX IF EXISTS samples_shift_state_idx"); err != nil {
		return fmt.Errorf("drop samples_shift_state_idx: %w", err)
	}
	if want {
		if _, err := conn.Exec(ctx, optional.ShiftStateIndex); err != nil {
			return fmt.Errorf("create samples_shift_state_idx: %w", err)
		}
	}
	return nil
}

// fleetVehicle is one loaded vehicle and its time span.
type fleetVehicle struct {
	ID          string
	First, Last time.Time
}

// vehicleUUID is a stable UUID-shaped id (36 characters), as the original data set's.
func vehicleUUID(i int) string {
	r := rand.New(rand.NewPCG(uint64(i), 0x5eed))
	return fmt.Sprintf("%08x-%04x-4%03x-a%03x-%012x", r.Uint32(), r.Uint32()&0xffff, r.Uint32()&0xfff, r.Uint32()&0xfff, r.Uint64()&0xffffffffffff)
}

// loadFleet creates (or, with Reuse, finds) the database "list" holding the fleet.
func (l *lab) loadFleet(ctx context.Context, opts ListOptions) (string, []fleetVehicle, error) {
	want := int64(opts.Vehicles) * int64(opts.Rows)
	// A fixed name, outside the run's own prefix, so that --reuse finds it next time.
	const name = "vdbench_fleet"
	dbURL, err := databaseURLFor(l.pg.adminURL, name)
	if err != nil {
		return "", nil, err
	}
	if opts.Reuse {
		if vs, err := fleetVehicles(ctx, dbURL, want); err == nil {
			l.logf("reusing database %s with %s samples", name, thousands(want))
			return dbURL, vs, nil
		}
	}
	err = l.pg.withConn(ctx, l.pg.adminURL, func(conn *pgx.Conn) error {
		ident := pgx.Identifier{name}.Sanitize()
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			return err
		}
		_, err := conn.Exec(ctx, "CREATE DATABASE "+ident)
		return err
	})
	if err != nil {
		return "", nil, fmt.Errorf("create database %s: %w", name, err)
	}
	if !opts.Reuse {
		l.pg.created = append(l.pg.created, name)
	}
	if err := l.migrate(ctx, dbURL); err != nil {
		return "", nil, err
	}
	began := time.Now()
	for i := range opts.Vehicles {
		id := vehicleUUID(i)
		path := filepath.Join(l.dir, "fleet.csv")
		f, err := os.Create(path)
		if err != nil {
			return "", nil, err
		}
		err = sample.Write(f, sample.Options{VehicleID: id, Rows: opts.Rows, Seed: opts.Seed})
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return "", nil, err
		}
		if err := l.pg.exec(ctx, dbURL, `DO $$ BEGIN EXECUTE format('ALTER TABLE samples ALTER COLUMN vehicle_key SET DEFAULT %s', vehicle_key_for(`+quoteLiteral(id)+`)); END $$`); err != nil {
			return "", nil, err
		}
		d, n, err := l.psql.copyIn(ctx, dbURL, "samples", path)
		if err != nil {
			return "", nil, err
		}
		l.logf("vehicle %d/%d %s: %s rows in %s", i+1, opts.Vehicles, id, thousands(n), d.Round(time.Millisecond))
	}
	// The state a table reaches once autovacuum has passed: statistics, hint bits and the
	// visibility map that index-only scans rely on.
	if err := l.pg.exec(ctx, dbURL, "ALTER TABLE samples ALTER COLUMN vehicle_key DROP DEFAULT",
		"VACUUM (ANALYZE) samples", "VACUUM (ANALYZE) sample_five_minutes", "VACUUM (ANALYZE) sample_hours", "VACUUM (ANALYZE) sample_hour_states", "VACUUM (ANALYZE) vehicles"); err != nil {
		return "", nil, err
	}
	if err := l.pg.checkpoint(ctx); err != nil {
		return "", nil, err
	}
	l.logf("loaded %s samples in %s", thousands(want), since(began))
	vs, err := fleetVehicles(ctx, dbURL, want)
	return dbURL, vs, err
}

func fleetVehicles(ctx context.Context, dbURL string, want int64) ([]fleetVehicle, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	var n int64
	if err := conn.QueryRow(ctx, "SELECT COALESCE(sum(record_count), 0)::bigint FROM vehicles").Scan(&n); err != nil {
		return nil, err
	}
	if n != want {
		return nil, fmt.Errorf("database holds %d samples, want %d", n, want)
	}
	rows, err := conn.Query(ctx, "SELECT vehicle_id, first_timestamp, last_timestamp FROM vehicles WHERE record_count > 0 ORDER BY vehicle_id")
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (fleetVehicle, error) {
		var v fleetVehicle
		err := r.Scan(&v.ID, &v.First, &v.Last)
		return v, err
	})
}

// mixQuery is one request of a mix: its path and query, and how to run it in-process so that
// its SQL can be captured for pgbench.
type mixQuery struct {
	Name  string
	Path  string // with the query string
	Store func(ctx context.Context, s *records.Store) error
}

// minute renders t as an HTML datetime-local input does: minutes, no seconds, no offset.
func minute(t time.Time) string { return t.UTC().Format("2006-01-02T15:04") }

// listMix is the dashboard's mix: every combination of page (1, 2, 50, 1000), page size (10,
// 100), ordering (timestamp, -timestamp, odometer, -speed) and time range (none, or about 20%
// of the vehicle's span at a position of its own), each on one vehicle in turn.
func listMix(vs []fleetVehicle) []mixQuery {
	var out []mixQuery
	rng := rand.New(rand.NewPCG(8, 8))
	i := 0
	for _, page := range []int32{1, 2, 50, 1000} {
		for _, size := range []int32{10, 100} {
			for _, ordering := range []string{"timestamp", "-timestamp", "odometer", "-speed"} {
				for _, ranged := range []bool{false, true} {
					v := vs[i%len(vs)]
					i++
					q := url.Values{"vehicle_id": {v.ID}, "ordering": {ordering}, "page": {strconv.Itoa(int(page))}, "page_size": {strconv.Itoa(int(size))}}
					in := records.FilterInput{VehicleID: &v.ID}
					if ranged {
						span := v.Last.Sub(v.First)
						from := v.First.Add(time.Duration(rng.Float64() * 0.8 * float64(span)))
						a, b := minute(from), minute(from.Add(span/5))
						q.Set("initial_timestamp", a)
						q.Set("final_timestamp", b)
						in.InitialTimestamp, in.FinalTimestamp = &a, &b
					}
					f, errs := records.ParseFilter(in)
					o, err := records.ParseOrdering(ordering)
					p, perrs := records.ParsePage(&page, &size)
					if len(errs) > 0 || err != nil || len(perrs) > 0 {
						panic(fmt.Sprint("bench: bad mix query ", errs, err, perrs))
					}
					out = append(out, mixQuery{
						Name: fmt.Sprintf("page %d x%d %s%s", page, size, ordering, map[bool]string{true: " 20% range"}[ranged]),
						Path: "/api/v1/vehicle_data/?" + q.Encode(),
						Store: func(ctx context.Context, s *records.Store) error {
							_, err := s.List(ctx, f, o, p, "")
							return err
						},
					})
				}
			}
		}
	}
	return out
}

// seriesMix is the chart's: max_points=1000 over 64 ranges from one hour to a vehicle's whole
// span, growing geometrically, each on one vehicle in turn.
func seriesMix(vs []fleetVehicle) []mixQuery {
	var out []mixQuery
	rng := rand.New(rand.NewPCG(9, 9))
	for i := range 64 {
		v := vs[i%len(vs)]
		span := v.Last.Sub(v.First)
		length := time.Duration(float64(time.Hour) * math.Pow(float64(span)/float64(time.Hour), float64(i)/63))
		from := v.First.Add(time.Duration(rng.Float64() * float64(span-length)))
		a, b := minute(from), minute(from.Add(length))
		q := url.Values{"initial_timestamp": {a}, "final_timestamp": {b}, "max_points": {"1000"}}
		mp := int32(1000)
		sq, errs := records.ParseSeries(v.ID, records.SeriesInput{InitialTimestamp: &a, FinalTimestamp: &b, MaxPoints: &mp})
		if len(errs) > 0 {
			panic(fmt.Sprint("bench: bad series query ", errs))
		}
		out = append(out, mixQuery{
			Name: fmt.Sprintf("series %s", length.Round(time.Minute)),
			Path: "/api/v1/vehicles/" + url.PathEscape(v.ID) + "/series/?" + q.Encode(),
			Store: func(ctx context.Context, s *records.Store) error {
				_, err := s.Series(ctx, sq)
				return err
			},
		})
	}
	return out
}

// latencies summarises one set of timed requests.
type latencies struct {
	n, bad int
	d      []time.Duration
	wall   time.Duration
}

func (l latencies) pct(p float64) time.Duration {
	if len(l.d) == 0 {
		return 0
	}
	s := slices.Clone(l.d)
	slices.Sort(s)
	return s[min(len(s)-1, int(math.Ceil(p*float64(len(s))))-1)]
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 1, 64)
}

var httpClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 60 * time.Second}

func get(ctx context.Context, u string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, err
}

// load sends the mix round and round from conns workers for d.
func load(ctx context.Context, base string, mix []mixQuery, conns int, d time.Duration) latencies {
	var (
		mu  sync.Mutex
		out latencies
		wg  sync.WaitGroup
		bad atomic.Int64
	)
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	began := time.Now()
	for c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for i := c * 7; ctx.Err() == nil; i++ {
				t0 := time.Now()
				status, err := get(ctx, base+mix[i%len(mix)].Path)
				if ctx.Err() != nil {
					break // cut off by the end of the run: not a result
				}
				mine = append(mine, time.Since(t0))
				if err != nil || status/100 != 2 {
					bad.Add(1)
				}
			}
			mu.Lock()
			out.d = append(out.d, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	out.wall = time.Since(began)
	out.n, out.bad = len(out.d), int(bad.Load())
	return out
}

func (l *lab) runMix(ctx context.Context, w io.Writer, name string, mix []mixQuery, base string, store *records.Store, tr *sqlTracer, pgbench, dbURL string, d time.Duration) error {
	l.logf("%s mix: unloaded", name)
	for _, q := range mix { // warm-up: caches and each connection's statements
		if _, err := get(ctx, base+q.Path); err != nil {
			return err
		}
	}
	var unloaded latencies
	per := make([]time.Duration, len(mix))
	for i, q := range mix {
		var runs []time.Duration
		for range 5 {
			t0 := time.Now()
			status, err := get(ctx, base+q.Path)
			if err != nil {
				return err
			}
			if status/100 != 2 {
				unloaded.bad++
			}
			runs = append(runs, time.Since(t0))
		}
		slices.Sort(runs)
		per[i] = runs[2]
		unloaded.d = append(unloaded.d, runs...)
	}
	unloaded.n = len(unloaded.d)

	scripts, err := l.pgbenchScripts(ctx, name, mix, store, tr)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "%s mix (%d requests), through the server; pgbench runs the same SQL (-M prepared, -T %s)\n", name, len(mix), d)
	fmt.Fprintln(tw, "run\treq/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\tnon-2xx\tpgbench tps\tratio\t")
	fmt.Fprintf(tw, "unloaded (5 x each, one at a time)\t%.1f\t%s\t%s\t%s\t%s\t%d\t\t\t\n", float64(unloaded.n)/sumDur(unloaded.d).Seconds(),
		ms(unloaded.pct(.5)), ms(unloaded.pct(.9)), ms(unloaded.pct(.99)), ms(unloaded.pct(1)), unloaded.bad)
	for _, conns := range []int{8, 32} {
		l.logf("%s mix: %d connections for %s", name, conns, d)
		r := load(ctx, base, mix, conns, d)
		l.logf("%s mix: pgbench with %d clients", name, conns)
		tps, err := runPgbench(ctx, pgbench, dbURL, scripts, conns, d)
		if err != nil {
			return err
		}
		rps := float64(r.n) / r.wall.Seconds()
		fmt.Fprintf(tw, "%d connections, %s\t%.1f\t%s\t%s\t%s\t%s\t%d\t%.1f\t%.2f\t\n", conns, d, rps,
			ms(r.pct(.5)), ms(r.pct(.9)), ms(r.pct(.99)), ms(r.pct(1)), r.bad, tps, ratio(rps, tps))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%s mix, each request unloaded (median of 5):\n", name)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for i, q := range mix {
		fmt.Fprintf(tw, "%s\t%s ms\t\n", q.Name, ms(per[i]))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	return nil
}

func sumDur(ds []time.Duration) time.Duration {
	var s time.Duration
	for _, d := range ds {
		s += d
	}
	return s
}

// runOrderings times page 1 (10 rows) and page 1000 (100 rows) of every single-field ordering,
// with and without a vehicle and a time range, unloaded (the faster of two runs after one
// untimed run).
func (l *lab) runOrderings(ctx context.Context, w io.Writer, vs []fleetVehicle, base string) error {
	l.logf("orderings")
	v := vs[0]
	span := v.Last.Sub(v.First)
	from, to := minute(v.First.Add(span*2/5)), minute(v.First.Add(span*3/5))
	fmt.Fprintf(w, "every ordering, unloaded (one run after a warm-up), ms; range: %s..%s (about 20%% of each vehicle)\n", from, to)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "ordering\tall p1\tall p1000\tvehicle p1\tvehicle p1000\trange p1\trange p1000\tvehicle+range p1\tvehicle+range p1000\t")
	err := eachOrdering(tw, func(ordering string) error {
		for _, filt := range []url.Values{{}, {"vehicle_id": {v.ID}}, {"initial_timestamp": {from}, "final_timestamp": {to}},
			{"vehicle_id": {v.ID}, "initial_timestamp": {from}, "final_timestamp": {to}}} {
			for _, p := range [][2]string{{"1", "10"}, {"1000", "100"}} {
				q := url.Values{"ordering": {ordering}, "page": {p[0]}, "page_size": {p[1]}}
				for k, vv := range filt {
					q[k] = vv
				}
				if err := timeCell(ctx, tw, base+"/api/v1/vehicle_data/?"+q.Encode()); err != nil {
					return err
				}
			}
		}
		return nil
	})
	fmt.Fprintln(w)
	return err
}

// runCounts times the count the list runs, alone in SQL, over ranges from a minute to
// everything, with and without a vehicle (median of 5).
func (l *lab) runCounts(ctx context.Context, w io.Writer, vs []fleetVehicle, store *records.Store, tr *sqlTracer, pool *pgxpool.Pool) error {
	l.logf("counts")
	v := vs[0]
	span := v.Last.Sub(v.First)
	fmt.Fprintln(w, "count over a time range, its SQL alone (median of 5), ms")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "range\tone vehicle\tall vehicles\t")
	for _, length := range []time.Duration{time.Minute, time.Hour, 24 * time.Hour, span / 5, span / 2, span} {
		from := v.First.Add((span - length) / 2).Add(17*time.Second + 123*time.Millisecond) // off every edge
		to := from.Add(length)
		fmt.Fprintf(tw, "%s\t", length.Round(time.Minute))
		for _, id := range []*string{&v.ID, nil} {
			f := records.Filter{VehicleID: id, From: &from, To: &to}
			stmts := tr.capture(func() error { _, err := store.Count(ctx, f); return err })
			var count *traced
			for i := range stmts {
				if strings.Contains(stmts[i].sql, "sample_hours") || strings.Contains(stmts[i].sql, "count(*)") {
					count = &stmts[i]
				}
			}
			if count == nil {
				return fmt.Errorf("count: no count statement captured")
			}
			var runs []time.Duration
			for range 5 {
				t0 := time.Now()
				var n int64
				if err := pool.QueryRow(ctx, count.sql, count.args...).Scan(&n); err != nil {
					return err
				}
				runs = append(runs, time.Since(t0))
			}
			slices.Sort(runs)
			fmt.Fprintf(tw, "%s\t", ms(runs[2]))
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	return nil
}

// runExports times the first byte of exports under several filters, and CSV, JSON and NDJSON
// of one vehicle against psql's \copy of the service's own SQL (median of 3).
func (l *lab) runExports(ctx context.Context, w io.Writer, vs []fleetVehicle, base string, store *records.Store, tr *sqlTracer, dbURL string) error {
	l.logf("exports")
	v := vs[0]
	span := v.Last.Sub(v.First)
	from, to := minute(v.First.Add(span*2/5)), minute(v.First.Add(span*3/5))
	fmt.Fprintln(w, "export: time to the first byte of the body (best of 3), ms")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, c := range []struct{ name, q string }{
		{"everything", "ordering=timestamp"},
		{"one vehicle", "vehicle_id=" + url.QueryEscape(v.ID)},
		{"one vehicle by -speed", "vehicle_id=" + url.QueryEscape(v.ID) + "&ordering=-speed"},
		{"one vehicle by soc", "vehicle_id=" + url.QueryEscape(v.ID) + "&ordering=soc"},
		{"20% range, all vehicles", "initial_timestamp=" + from + "&final_timestamp=" + to},
		{"everything by -id", "ordering=-id"},
	} {
		best := time.Duration(math.MaxInt64)
		for range 3 {
			d, err := firstByte(ctx, base+"/api/v1/vehicle_data/export/?export=csv&"+c.q)
			for busy := 0; errors.Is(err, errExportBusy) && busy < 100; busy++ {
				time.Sleep(100 * time.Millisecond)
				d, err = firstByte(ctx, base+"/api/v1/vehicle_data/export/?export=csv&"+c.q)
			}
			if err != nil {
				return err
			}
			best = min(best, d)
		}
		fmt.Fprintf(tw, "%s\t%s\t\n", c.name, ms(best))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	// The baseline: \copy of the very SQL the export runs, captured in-process.
	f := records.Filter{VehicleID: &v.ID}
	stmts := tr.capture(func() error {
		return store.Stream(ctx, f, records.DefaultOrder, func(*records.Record) error { return errStopStream })
	})
	var sel string
	for _, s := range stmts {
		if strings.HasPrefix(s.sql, "SELECT s.id") {
			sel = literalSQL(s.sql, s.args)
		}
	}
	if sel == "" {
		return fmt.Errorf("export: no query captured")
	}
	sel = strings.Replace(sel, "s.vehicle_key", quoteLiteral(v.ID)+" AS vehicle_id", 1)
	fmt.Fprintf(w, "\nexport of one vehicle (%s rows of %s), median of 3; baseline psql \\copy (%s) TO STDOUT CSV HEADER\n",
		thousands(int64(l.opts.Rows)), thousands(int64(l.opts.Rows)*int64(len(vs))), sel)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "format\tseconds\tratio to \\copy\t")
	var copyRuns []time.Duration
	for range 3 {
		var cw countingWriter
		d, err := l.psql.run(ctx, dbURL, `\copy (`+sel+`) TO STDOUT WITH CSV HEADER`, &cw, true)
		if err != nil {
			return err
		}
		copyRuns = append(copyRuns, d)
	}
	cp := newSeconds(copyRuns).Median
	fmt.Fprintf(tw, "psql \\copy\t%.3f\t1.00\t\n", cp)
	for _, format := range []string{"csv", "json", "ndjson"} {
		var runs []time.Duration
		for range 3 {
			t0 := time.Now()
			status, err := get(ctx, base+"/api/v1/vehicle_data/export/?export="+format+"&vehicle_id="+url.QueryEscape(v.ID))
			if err != nil || status != 200 {
				return fmt.Errorf("export %s: %d %v", format, status, err)
			}
			runs = append(runs, time.Since(t0))
		}
		s := newSeconds(runs).Median
		fmt.Fprintf(tw, "%s\t%.3f\t%.2f\t\n", format, s, s/cp)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	return nil
}

var errStopStream = fmt.Errorf("stop")

func firstByte(ctx context.Context, u string) (time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var b [1]byte
	if _, err := io.ReadFull(resp.Body, b[:]); err != nil {
		return 0, err
	}
	d := time.Since(t0)
	// An error's body is quick too: only the file's first byte counts. The export slots of
	// the runs before may not be free yet (a cancelled export ends when the server notices):
	// a 503 is waited out.
	switch resp.StatusCode {
	case http.StatusOK:
		return d, nil
	case http.StatusServiceUnavailable:
		return 0, errExportBusy
	}
	return 0, fmt.Errorf("export %s: status %d", u, resp.StatusCode)
}

var errExportBusy = errors.New("export slots busy")

// pgbenchScripts writes one pgbench script per request of the mix: the transaction the
// service runs for it, captured in-process, with the values written in (planned with the
// values, as the service's force_custom_plan does).
func (l *lab) pgbenchScripts(ctx context.Context, name string, mix []mixQuery, store *records.Store, tr *sqlTracer) ([]string, error) {
	var paths []string
	for i, q := range mix {
		stmts := tr.capture(func() error { return q.Store(ctx, store) })
		var b strings.Builder
		b.WriteString("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;\n")
		for _, s := range stmts {
			if strings.HasPrefix(s.sql, "begin") || s.sql == "commit" || s.sql == "" {
				continue
			}
			b.WriteString(strings.ReplaceAll(literalSQL(s.sql, s.args), "\n", " ") + ";\n")
		}
		b.WriteString("COMMIT;\n")
		p := filepath.Join(l.dir, fmt.Sprintf("%s-%02d.sql", name, i))
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			return nil, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}

func runPgbench(ctx context.Context, pgbench, dbURL string, scripts []string, clients int, d time.Duration) (float64, error) {
	args := []string{"-n", "-M", "prepared", "-c", strconv.Itoa(clients), "-j", "2", "-T", strconv.Itoa(int(d.Seconds()))}
	for _, s := range scripts {
		args = append(args, "-f", s)
	}
	args = append(args, dbURL)
	out, err := exec.CommandContext(ctx, pgbench, args...).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("pgbench: %w: %s", err, lastLines(string(out), 5))
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "tps = ") {
			f := strings.Fields(line)
			return strconv.ParseFloat(f[2], 64)
		}
	}
	return 0, fmt.Errorf("pgbench: no tps in %s", lastLines(string(out), 5))
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func findTool(name, psqlPath string) (string, error) {
	if p := filepath.Join(filepath.Dir(psqlPath), name); fileExists(p) {
		return p, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin"} {
		if p := filepath.Join(dir, name); fileExists(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found (Debian: apt-get install postgresql)", name)
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// literalSQL writes args into sql as SQL literals, for pgbench and psql.
func literalSQL(sql string, args []any) string {
	for i := len(args); i >= 1; i-- { // $10 before $1
		sql = strings.ReplaceAll(sql, "$"+strconv.Itoa(i), literal(args[i-1]))
	}
	return sql
}

func literal(v any) string {
	switch v := v.(type) {
	case nil:
		return "NULL"
	case string:
		return quoteLiteral(v)
	case time.Time:
		return quoteLiteral(v.UTC().Format(time.RFC3339Nano)) + "::timestamptz"
	case *time.Time:
		return literal(*v)
	case int32, int64, int:
		return fmt.Sprint(v)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case []int32:
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = strconv.Itoa(int(x))
		}
		return "'{" + strings.Join(parts, ",") + "}'::int4[]"
	case []time.Time:
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = `"` + x.UTC().Format(time.RFC3339Nano) + `"`
		}
		return "'{" + strings.Join(parts, ",") + "}'::timestamptz[]"
	}
	panic(fmt.Sprintf("bench: no literal for %T", v))
}

// sqlTracer records the statements a pool runs, for pgbench scripts and \copy baselines.
type sqlTracer struct {
	mu    sync.Mutex
	on    bool
	stmts []traced
}

type traced struct {
	sql  string
	args []any
}

func (t *sqlTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	t.mu.Lock()
	if t.on {
		t.stmts = append(t.stmts, traced{sql: d.SQL, args: d.Args})
	}
	t.mu.Unlock()
	return ctx
}

func (t *sqlTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (t *sqlTracer) capture(fn func() error) []traced {
	t.mu.Lock()
	t.on, t.stmts = true, nil
	t.mu.Unlock()
	_ = fn()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.on = false
	return t.stmts
}

func tracedPool(ctx context.Context, dbURL string) (*pgxpool.Pool, *sqlTracer, error) {
	tr := &sqlTracer{}
	pool, err := database.OpenWith(ctx, dbURL, func(c *pgxpool.Config) { c.ConnConfig.Tracer = tr })
	return pool, tr, err
}
