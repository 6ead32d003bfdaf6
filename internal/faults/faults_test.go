//go:build faults

package faults_test

// One test per check of the contract's "Load, limits and faults". Each logs its figures in
// one line starting with "FAULTS <check>" before it asserts anything.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vehicle-data/vehicle-data/gen/client"
)

// memoryBound is the server's peak RSS that concurrent exports and uploads must stay under
// with the default limits (MAX_XLSX_EXPORTS 2, MAX_EXPORTS 4, CHUNK_BYTES_IN_FLIGHT
// 64MiB). A provisional figure: one 1M-row XLSX workbook peaked at 264 MiB in `make bench`,
// so two fit with room for the rest; lower it once the limits are measured.
const memoryBound = 600 << 20

// memoryGuard is where the memory sampler kills the server: past the bound the check has
// failed anyway, and a server without the limits would otherwise take gigabytes.
const memoryGuard = 2 * memoryBound

// 1. Short requests keep answering in milliseconds while exports are read slowly.
func TestShortRequestsUnderSlowExports(t *testing.T) {
	const (
		exports = 8
		rate    = 64 << 10 // bytes a second, per export
		measure = 15 * time.Second
		// Two clients sending short requests back to back: on 2 cores shared with PostgreSQL
		// and the slow readers, more would measure the queue of short requests behind each
		// other (the series of a 1M-row vehicle costs about 50 ms by itself), not the exports.
		// The baseline without exports, in the same run, shows what the exports add.
		workers  = 2
		baseline = 8 * time.Second
		p99Bound = 100 * time.Millisecond
	)
	db := bigDatabase(t)
	srv := startServer(t, serverConfig{db: db, env: map[string]string{"MAX_EXPORTS": fmt.Sprint(exports)}})
	ctx := t.Context()
	hc := newHTTPClient(5 * time.Second)
	defer hc.CloseIdleConnections()
	c := srv.api(t, hc)

	// Fixtures: a record's id, and an unfinished upload for upload_status.
	page := read(c.ListVehicleData(ctx, &client.ListVehicleDataParams{VehicleId: ptr(bigVehicle), PageSize: ptr[int32](1)}))
	var first client.VehicleDataPage
	if page.status != http.StatusOK || json.Unmarshal(page.body, &first) != nil || len(first.Results) == 0 {
		t.Fatalf("list: %s", page)
	}
	id := first.Results[0].Id
	if r := postChunk(ctx, c, bigVehicle, "pending.csv", 0, 2, []byte(sampleHeader+"\n")); r.status != http.StatusOK {
		t.Fatalf("upload chunk: %s", r)
	}

	type shortRequest struct {
		name string
		do   func(context.Context) (int, http.Header, error)
	}
	shorts := []shortRequest{
		{"list", func(ctx context.Context) (int, http.Header, error) {
			return drain(c.ListVehicleData(ctx, &client.ListVehicleDataParams{VehicleId: ptr(bigVehicle), Page: ptr[int32](1)}))
		}},
		{"retrieve", func(ctx context.Context) (int, http.Header, error) { return drain(c.GetVehicleData(ctx, id, nil)) }},
		{"vehicles", func(ctx context.Context) (int, http.Header, error) { return drain(c.ListVehicles(ctx, nil)) }},
		{"upload_status", func(ctx context.Context) (int, http.Header, error) {
			return drain(c.GetUploadStatus(ctx, &client.GetUploadStatusParams{VehicleId: bigVehicle, FileName: "pending.csv"}))
		}},
		{"series", func(ctx context.Context) (int, http.Header, error) {
			return drain(c.GetVehicleSeries(ctx, bigVehicle, &client.GetVehicleSeriesParams{}))
		}},
		{"healthz", func(ctx context.Context) (int, http.Header, error) { return drain(c.GetHealth(ctx)) }},
		{"readyz", func(ctx context.Context) (int, http.Header, error) { return drain(c.GetReadiness(ctx)) }},
	}
	measureShorts := func(d time.Duration) *latencies {
		lat := newLatencies()
		deadline := time.Now().Add(d)
		var sw sync.WaitGroup
		for w := range workers {
			sw.Go(func() {
				for k := w; time.Now().Before(deadline) && ctx.Err() == nil; k++ {
					r := shorts[k%len(shorts)]
					began := time.Now()
					status, _, err := r.do(ctx)
					lat.add(r.name, time.Since(began), status, err)
				}
			})
		}
		sw.Wait()
		return lat
	}
	base := measureShorts(baseline)

	// The slow exports: each read at rate until the measurement ends.
	slow := slowHTTPClient()
	defer slow.CloseIdleConnections()
	sc := srv.api(t, slow)
	expCtx, stopExports := context.WithCancel(ctx)
	defer stopExports()
	type exportOutcome struct {
		status int
		read   int64
		err    error // nil: still streaming when the measurement ended
	}
	outcomes := make([]exportOutcome, exports)
	started := make(chan struct{}, exports)
	var wg sync.WaitGroup
	for i := range exports {
		wg.Go(func() {
			o := &outcomes[i]
			resp, err := sc.ExportVehicleData(expCtx, &client.ExportVehicleDataParams{VehicleId: ptr(bigVehicle), Export: ptr(client.Csv)})
			started <- struct{}{}
			if err != nil {
				o.err = err
				return
			}
			defer resp.Body.Close()
			if o.status = resp.StatusCode; o.status != http.StatusOK {
				b, _ := io.ReadAll(io.LimitReader(resp.Body, 1000))
				o.err = fmt.Errorf("status %d: %s", o.status, b)
				return
			}
			o.read, o.err = readThrottled(expCtx, resp.Body, rate)
			if o.err == io.EOF {
				o.err = fmt.Errorf("the export ended after %d bytes, before the measurement did", o.read)
			}
		})
	}
	// Every export has its headers (or has failed: the slow client bounds them at 10 s).
	for range exports {
		<-started
	}

	lat := measureShorts(measure)
	stopExports()
	wg.Wait()

	streaming, minRead := 0, int64(-1)
	var exportErrs []string
	for i, o := range outcomes {
		if o.err == nil {
			streaming++
		} else {
			exportErrs = append(exportErrs, fmt.Sprintf("export %d: %v", i, o.err))
		}
		if minRead < 0 || o.read < minRead {
			minRead = o.read
		}
	}
	p99 := lat.pct(99)
	t.Logf("FAULTS short-p99-under-slow-exports p50=%s p99=%s max=%s n=%d non2xx=%d errors=%d exports_streaming=%d/%d min_export_read=%s baseline_without_exports: p50=%s p99=%s n=%d; p99_by_request: %s; baseline: %s",
		ms(lat.pct(50)), ms(p99), ms(lat.pct(100)), lat.count(), lat.non2xx(), lat.errors(), streaming, exports, mib(minRead),
		ms(base.pct(50)), ms(base.pct(99)), base.count(), lat.p99s(), base.p99s())

	if streaming != exports {
		t.Errorf("%d of %d slow exports streamed through the measurement: %s", streaming, exports, strings.Join(exportErrs, "; "))
	}
	if lat.non2xx() > 0 || lat.errors() > 0 {
		t.Errorf("short requests: %d non-2xx, %d errors; first: %s", lat.non2xx(), lat.errors(), lat.failures())
	}
	if p99 > p99Bound {
		t.Errorf("short requests' p99 is %s, want <= %s", ms(p99), ms(p99Bound))
	}
}

// sampleHeader is the header row of an uploaded file.
const sampleHeader = "timestamp,speed,odometer,soc,elevation,shift_state"

// 2. A PostgreSQL restart mid-traffic: 503 while it is down, never a 500 or a hang, and
// recovery by itself as soon as it is back.
func TestPostgresRestart(t *testing.T) {
	const (
		workers   = 4
		before    = 2 * time.Second // traffic before the stop
		down      = 3 * time.Second // PostgreSQL stays down this long
		after     = 8 * time.Second // traffic after it is back
		recovered = 5 * time.Second // first success at most this long after it is back
	)
	db := createDatabase(t, "restart")
	if err := loadRows(t.Context(), db, "fx-restart", 2000); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, serverConfig{db: db})
	// Whatever happens here, the next tests need PostgreSQL.
	t.Cleanup(func() {
		if !postgresRunning() {
			if err := startPostgres(); err != nil {
				t.Errorf("start PostgreSQL again: %v", err)
			}
		}
	})
	hc := newHTTPClient(5 * time.Second)
	defer hc.CloseIdleConnections()
	c := srv.api(t, hc)
	ctx := t.Context()

	type request struct {
		began, ended time.Time
		status       int
		header       http.Header
		err          error
	}
	var (
		mu   sync.Mutex
		reqs []request
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				r := request{began: time.Now()}
				res := read(c.ListVehicleData(ctx, &client.ListVehicleDataParams{VehicleId: ptr("fx-restart"), Page: ptr(int32(1 + (w+k)%20))}))
				r.ended, r.status, r.header, r.err = time.Now(), res.status, res.header, res.err
				if r.status == http.StatusServiceUnavailable && res.detail() == "" {
					r.err = fmt.Errorf("503 without a detail: %s", res)
				}
				mu.Lock()
				reqs = append(reqs, r)
				mu.Unlock()
				time.Sleep(10 * time.Millisecond)
			}
		})
	}

	time.Sleep(before)
	downAt := time.Now()
	stopCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := stopPostgres(stopCtx)
	cancel()
	if err != nil {
		close(stop)
		wg.Wait()
		t.Fatalf("stop PostgreSQL: %v", err)
	}
	time.Sleep(down)
	if err := startPostgres(); err != nil {
		close(stop)
		wg.Wait()
		t.Fatalf("start PostgreSQL again: %v", err)
	}
	upAt := time.Now()
	time.Sleep(after)
	close(stop)
	wg.Wait()

	var (
		n503, noRetryAfter, other5xx, errs, otherStatus int
		firstOK                                         time.Time
		examples                                        []string
	)
	for _, r := range reqs {
		switch {
		case r.err != nil:
			errs++
			examples = append(examples, r.err.Error())
		case r.status == http.StatusServiceUnavailable:
			n503++
			if r.header.Get("Retry-After") == "" {
				noRetryAfter++
			}
		case r.status >= 500:
			other5xx++
			examples = append(examples, fmt.Sprintf("status %d", r.status))
		case r.status == http.StatusOK:
			if !r.began.Before(upAt) && (firstOK.IsZero() || r.ended.Before(firstOK)) {
				firstOK = r.ended
			}
		default:
			otherStatus++
			examples = append(examples, fmt.Sprintf("status %d", r.status))
		}
	}
	// After the first success every request must succeed: no dead connection left in the pool.
	failedAfter := 0
	for _, r := range reqs {
		if !firstOK.IsZero() && r.began.After(firstOK) && (r.err != nil || r.status != http.StatusOK) {
			failedAfter++
		}
	}
	toFirst := time.Duration(-1)
	if !firstOK.IsZero() {
		toFirst = firstOK.Sub(upAt)
	}
	t.Logf("FAULTS postgres-restart outage=%s n=%d 503s=%d 503s_without_retry_after=%d other_5xx=%d errors=%d other_status=%d first_ok_after_up=%s failed_after_first_ok=%d",
		secs(upAt.Sub(downAt)), len(reqs), n503, noRetryAfter, other5xx, errs, otherStatus, secs(toFirst), failedAfter)

	if other5xx > 0 || errs > 0 || otherStatus > 0 {
		t.Errorf("%d 5xx other than 503, %d errors (hangs, resets, 503s without a detail), %d other statuses; first: %s",
			other5xx, errs, otherStatus, strings.Join(examples[:min(len(examples), 5)], "; "))
	}
	switch {
	case firstOK.IsZero():
		t.Errorf("no request succeeded in the %s after PostgreSQL was back", after)
	case toFirst > recovered:
		t.Errorf("first success %s after PostgreSQL was back, want <= %s", secs(toFirst), recovered)
	}
	if failedAfter > 0 {
		t.Errorf("%d requests failed after the first success (a pool holding dead connections?)", failedAfter)
	}
}

// 3. kill -9 of the server in the middle of a finalize: finalized again within seconds of
// the restarted server being ready, every row exactly once. Both ways a finalize inserts:
// a file of new rows is copied straight into samples; one with a duplicate is staged, then
// inserted by an INSERT ... SELECT, the phase a dead client would leave running (during a
// COPY the backend sees the client's socket close and stops by itself).
func TestKillMidFinalize(t *testing.T) {
	for _, tt := range []struct {
		name, vehicle string
		dup           bool   // repeat the first row: the staged path
		query         string // the statement to kill in, as pg_stat_activity shows it
	}{
		{"copy", "fx-kill", false, `copy "samples"%`},
		{"staged", "fx-kill-staged", true, `INSERT INTO samples%`},
	} {
		t.Run(tt.name, func(t *testing.T) { killMidFinalize(t, tt.vehicle, tt.dup, tt.query) })
	}
}

func killMidFinalize(t *testing.T, vehicle string, dup bool, query string) {
	const (
		rows      = 1_000_000 // a dead attempt left running would hold the lock for 5 s or more
		file      = "kill.csv"
		killAfter = 500 * time.Millisecond // into the statement
		retryBy   = 5 * time.Second        // the successful retry is sent at most this long after ready
	)
	db := createDatabase(t, "kill")
	srv := startServer(t, serverConfig{db: db})
	ctx := t.Context()
	hc := newHTTPClient(2 * time.Minute)
	defer hc.CloseIdleConnections()
	c := srv.api(t, hc)

	data := sampleCSV(vehicle, rows)
	wantDuplicate := 0
	if dup {
		header, rest, _ := bytes.Cut(data, []byte("\n"))
		first, _, _ := bytes.Cut(rest, []byte("\n"))
		data = slices.Concat(header, []byte("\n"), first, []byte("\n"), rest)
		wantDuplicate = 1
	}
	total, err := uploadFile(ctx, c, vehicle, file, data, 4<<20)
	if err != nil {
		t.Fatal(err)
	}
	finalize := func() result {
		return read(c.FinalizeUpload(ctx, client.FinalizeRequest{VehicleId: vehicle, FileName: file, TotalChunks: int32(total)}))
	}
	first := make(chan result, 1)
	finalizeAt := time.Now()
	go func() { first <- finalize() }()
	var killedAfter time.Duration
	for deadline := time.Now().Add(time.Minute); ; {
		select {
		case r := <-first:
			t.Fatalf("the finalize ended within %s, before the kill (%s): use more rows", time.Since(finalizeAt).Round(time.Millisecond), r)
		default:
		}
		n, err := queryInt(ctx, db, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND state = 'active' AND query LIKE $1`, query)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			time.Sleep(killAfter)
			killedAfter = time.Since(finalizeAt)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the finalize never reached %s", query)
		}
		time.Sleep(20 * time.Millisecond)
	}
	srv.kill()
	hc.CloseIdleConnections() // they went with the process
	if r := <-first; r.err == nil {
		t.Logf("the killed finalize answered: %s", r)
	}

	readyAt := srv.start(t)
	var (
		attempts int
		statuses []string
		ok       result
		okSent   time.Time
	)
	for deadline := readyAt.Add(2 * time.Minute); time.Now().Before(deadline); {
		attempts++
		sent := time.Now()
		r := finalize()
		statuses = append(statuses, fmt.Sprint(r.status))
		if r.status == http.StatusOK {
			ok, okSent = r, sent
			break
		}
		if r.err != nil || (r.status != http.StatusConflict && r.status != http.StatusServiceUnavailable) {
			t.Fatalf("finalize again (attempt %d): %s", attempts, r)
		}
		time.Sleep(250 * time.Millisecond)
	}
	doneAt := time.Now()
	if okSent.IsZero() {
		t.Fatalf("no finalize succeeded within 2 minutes of the restart (%d attempts: %s)", attempts, strings.Join(statuses, ","))
	}
	var res client.FinalizeResult
	if err := json.Unmarshal(ok.body, &res); err != nil {
		t.Fatalf("finalize answer %s: %v", ok, err)
	}
	stored, err := queryInt(ctx, db, `SELECT count(*) FROM vehicle_data WHERE vehicle_id = $1`, vehicle)
	if err != nil {
		t.Fatal(err)
	}
	distinct, err := queryInt(ctx, db, `SELECT count(DISTINCT "timestamp") FROM vehicle_data WHERE vehicle_id = $1`, vehicle)
	if err != nil {
		t.Fatal(err)
	}
	page := read(c.ListVehicleData(ctx, &client.ListVehicleDataParams{VehicleId: ptr(vehicle)}))
	var listed client.VehicleDataPage
	if err := json.Unmarshal(page.body, &listed); err != nil {
		t.Fatalf("list: %s", page)
	}
	t.Logf("FAULTS kill-mid-finalize path=%s rows=%d killed_after=%s retry_sent_after_ready=%s retry_done_after_ready=%s attempts=%d statuses=%s inserted=%d duplicate=%d stored=%d listed=%d",
		map[bool]string{false: "copy", true: "staged"}[dup], rows, secs(killedAfter), secs(okSent.Sub(readyAt)), secs(doneAt.Sub(readyAt)), attempts, strings.Join(statuses, ","),
		res.RowsInserted, res.RowsDuplicate, stored, listed.Count)

	if d := okSent.Sub(readyAt); d > retryBy {
		t.Errorf("the successful finalize was sent %s after the restarted server was ready, want <= %s (earlier attempts: %s)",
			secs(d), retryBy, strings.Join(statuses[:len(statuses)-1], ","))
	}
	if res.RowsInserted != rows || res.RowsDuplicate != int64(wantDuplicate) || res.RowsInvalid != 0 {
		t.Errorf("finalize after the kill: %d inserted, %d duplicate, %d invalid; want %d, %d, 0 (nothing of the dead attempt may remain)",
			res.RowsInserted, res.RowsDuplicate, res.RowsInvalid, rows, wantDuplicate)
	}
	if stored != rows || distinct != rows || listed.Count != rows {
		t.Errorf("stored %d rows (%d distinct timestamps, list count %d), want %d exactly once", stored, distinct, listed.Count, rows)
	}
}

// 4. A mixed soak: no 5xx but documented 503s, no memory growth after the warm-up, no
// goroutine leak. FAULTS_SOAK sets its length (default 60s).
func TestSoak(t *testing.T) {
	soak := durationEnv(t, "FAULTS_SOAK", 60*time.Second)
	warmUp := min(10*time.Second, soak/3)
	const (
		seedVehicle   = "fx-soak"
		seedRows      = 20_000
		growthBound   = 0.10 // RSS growth after the warm-up
		goroutineLeak = 20   // goroutines over the starting count after the soak
	)
	db := createDatabase(t, "soak")
	if err := loadRows(t.Context(), db, seedVehicle, seedRows); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, serverConfig{db: db})
	ctx := t.Context()
	hc := newHTTPClient(30 * time.Second)
	defer hc.CloseIdleConnections()
	slow := slowHTTPClient()
	defer slow.CloseIdleConnections()
	c, sc := srv.api(t, hc), srv.api(t, slow)
	if r := postChunk(ctx, c, seedVehicle, "pending.csv", 0, 2, []byte(sampleHeader+"\n")); r.status != http.StatusOK {
		t.Fatalf("upload chunk: %s", r)
	}
	startGoroutines, err := srv.goroutines(ctx, hc)
	if err != nil {
		t.Fatal(err)
	}

	var (
		mu       sync.Mutex
		counts   = map[string]int{} // "what status"
		bad      []string
		n503     atomic.Int64
		requests atomic.Int64
	)
	// check classifies one answer: 2xx, a documented 503, or a failure.
	check := func(what string, status int, header http.Header, body []byte, err error) {
		requests.Add(1)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err != nil:
			if ctx.Err() == nil {
				bad = append(bad, fmt.Sprintf("%s: %v", what, err))
			}
		case status/100 == 2:
		case status == http.StatusServiceUnavailable:
			n503.Add(1)
			if why := undocumented503(header, body); why != "" {
				bad = append(bad, fmt.Sprintf("%s: 503 %s", what, why))
			}
		default:
			bad = append(bad, fmt.Sprintf("%s: %d %.200s", what, status, body))
		}
		counts[fmt.Sprintf("%s %d", what, status)]++
	}
	checkResult := func(what string, r result) { check(what, r.status, r.header, r.body, r.err) }

	mem := sampleMemory(srv.pid(), 50*time.Millisecond, memoryGuard, srv.kill)
	began := time.Now()
	end := began.Add(soak)
	running := func() bool { return time.Now().Before(end) && ctx.Err() == nil }
	var wg sync.WaitGroup
	// Uploads and finalizes of small files, each its own vehicle.
	for w := range 2 {
		wg.Go(func() {
			for i := 0; running(); i++ {
				vehicle := fmt.Sprintf("fx-soak-%d-%d", w, i)
				data := sampleCSV(vehicle, 2000)
				half := len(data) / 2
				ok := true
				for k, part := range [][]byte{data[:half], data[half:]} {
					r := postChunk(ctx, c, vehicle, "soak.csv", k, 2, part)
					checkResult("upload_chunk", r)
					ok = ok && r.status == http.StatusOK
				}
				if !ok {
					continue
				}
				r := read(c.FinalizeUpload(ctx, client.FinalizeRequest{VehicleId: vehicle, FileName: "soak.csv", TotalChunks: 2}))
				checkResult("finalize", r)
			}
		})
	}
	// Lists and retrieves.
	for w := range 2 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for running() {
				r := read(c.ListVehicleData(ctx, &client.ListVehicleDataParams{VehicleId: ptr(seedVehicle),
					Page: ptr(int32(1 + rng.IntN(50))), PageSize: ptr(int32(10 + rng.IntN(91))), Ordering: ptr([]string{"timestamp", "-speed", "odometer"}[rng.IntN(3)])}))
				checkResult("list", r)
				var page client.VehicleDataPage
				if r.status == http.StatusOK && json.Unmarshal(r.body, &page) == nil && len(page.Results) > 0 {
					checkResult("retrieve", read(c.GetVehicleData(ctx, page.Results[rng.IntN(len(page.Results))].Id, nil)))
				}
				checkResult("list_all", read(c.ListVehicleData(ctx, &client.ListVehicleDataParams{})))
			}
		})
	}
	// Exports read at full speed, every format.
	wg.Go(func() {
		formats := []client.ExportVehicleDataParamsExport{client.Csv, client.Json, client.Ndjson, client.Xlsx}
		for i := 0; running(); i++ {
			f := formats[i%len(formats)]
			r := readExport(c.ExportVehicleData(ctx, &client.ExportVehicleDataParams{VehicleId: ptr(seedVehicle), Export: ptr(f)}))
			checkResult("export_"+string(f), r)
		}
	})
	// An export read slowly, closed early now and then.
	wg.Go(func() {
		for i := 0; running(); i++ {
			rctx, cancel := context.WithTimeout(ctx, time.Duration(1+i%4)*time.Second)
			resp, err := sc.ExportVehicleData(rctx, &client.ExportVehicleDataParams{VehicleId: ptr(seedVehicle), Export: ptr(client.Ndjson)})
			if err == nil {
				if resp.StatusCode == http.StatusOK {
					_, err = readThrottled(rctx, resp.Body, 256<<10)
					if err == io.EOF || rctx.Err() != nil {
						err = nil
					}
					check("export_slow", resp.StatusCode, resp.Header, nil, err)
				} else {
					b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
					check("export_slow", resp.StatusCode, resp.Header, b, nil)
				}
				resp.Body.Close()
			} else if rctx.Err() == nil {
				check("export_slow", 0, nil, nil, err)
			}
			cancel()
		}
	})
	// Series, vehicles, upload status, health.
	wg.Go(func() {
		for running() {
			checkResult("series", read(c.GetVehicleSeries(ctx, seedVehicle, &client.GetVehicleSeriesParams{MaxPoints: ptr[int32](500)})))
			checkResult("vehicles", read(c.ListVehicles(ctx, nil)))
			checkResult("upload_status", read(c.GetUploadStatus(ctx, &client.GetUploadStatusParams{VehicleId: seedVehicle, FileName: "pending.csv"})))
			checkResult("healthz", read(c.GetHealth(ctx)))
			time.Sleep(20 * time.Millisecond)
		}
	})
	wg.Wait()
	soaked := time.Since(began)
	mem.stop()
	// Peaks rather than single readings, which swing with every GC cycle: the one right after
	// the warm-up against the one at the end.
	window := min(5*time.Second, soak/6)
	warmPeak, _ := mem.peak(began.Add(warmUp), began.Add(warmUp+window))
	endPeak, hwm := mem.peak(end.Add(-window), time.Time{})
	growth := float64(endPeak)/float64(max(warmPeak, 1)) - 1

	// Idle: the clients close their connections, the server's goroutines for them end.
	hc.CloseIdleConnections()
	slow.CloseIdleConnections()
	idle := newHTTPClient(5 * time.Second)
	defer idle.CloseIdleConnections()
	endGoroutines := -1
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
		time.Sleep(time.Second)
		n, err := srv.goroutines(ctx, idle)
		if err != nil {
			t.Errorf("goroutines after the soak: %v", err)
			break
		}
		idle.CloseIdleConnections()
		if endGoroutines = n; n <= startGoroutines+goroutineLeak {
			break
		}
	}
	mu.Lock()
	nbad := len(bad)
	firstBad := strings.Join(bad[:min(len(bad), 8)], "; ")
	mu.Unlock()
	t.Logf("FAULTS soak duration=%s requests=%d bad=%d 503s=%d rss_after_warmup=%s rss_end=%s rss_growth=%.1f%% hwm=%s goroutines_start=%d goroutines_end=%d",
		secs(soaked), requests.Load(), nbad, n503.Load(), mib(warmPeak), mib(endPeak), growth*100, mib(hwm), startGoroutines, endGoroutines)
	t.Logf("soak answers: %v", counts)

	if mem.guardTripped() {
		t.Errorf("the server's RSS passed %s and it was killed", mib(memoryGuard))
	}
	if nbad > 0 {
		t.Errorf("%d answers other than 2xx or a documented 503; first: %s", nbad, firstBad)
	}
	if growth > growthBound {
		t.Errorf("RSS grew %.1f%% after the warm-up (%s -> %s), want <= %.0f%%", growth*100, mib(warmPeak), mib(endPeak), growthBound*100)
	}
	if endGoroutines < 0 || endGoroutines > startGoroutines+goroutineLeak {
		t.Errorf("goroutines: %d at the start, %d after the soak and an idle, want <= %d", startGoroutines, endGoroutines, startGoroutines+goroutineLeak)
	}
}

// 5. Memory under concurrent XLSX workbooks, CSV exports and large chunk posts, with the
// default limits: the peak RSS stays under memoryBound.
func TestMemoryBound(t *testing.T) {
	t.Run("xlsx", func(t *testing.T) {
		const (
			requests  = 8
			allowed   = 2 // MAX_XLSX_EXPORTS' default
			immediate = 2 * time.Second
		)
		srv := startServer(t, serverConfig{db: bigDatabase(t)})
		res := concurrentExports(t, srv, requests, client.Xlsx, 90*time.Second)
		var ok, rejected, slowRejects int
		var others []string
		for _, r := range res.outcomes {
			switch {
			case r.status == http.StatusOK && r.err == nil && bytes.HasPrefix(r.head, []byte("PK")):
				ok++
			case r.status == http.StatusServiceUnavailable && undocumented503(r.header, r.body) == "":
				rejected++
				if r.took > immediate {
					slowRejects++
				}
			default:
				others = append(others, r.String())
			}
		}
		t.Logf("FAULTS memory-xlsx requests=%d ok=%d 503s=%d slow_503s=%d other=%d peak_rss=%s hwm=%s bound=%s took=%s",
			requests, ok, rejected, slowRejects, len(others), mib(res.peak), mib(res.hwm), mib(memoryBound), secs(res.took))
		res.assertBound(t)
		if ok != allowed || rejected != requests-allowed || len(others) > 0 {
			t.Errorf("want %d workbooks and %d documented 503s, got %d and %d; others: %s", allowed, requests-allowed, ok, rejected, strings.Join(others, "; "))
		}
		if slowRejects > 0 {
			t.Errorf("%d 503s took longer than %s", slowRejects, immediate)
		}
	})
	t.Run("csv", func(t *testing.T) {
		const requests = 32
		srv := startServer(t, serverConfig{db: bigDatabase(t)})
		res := concurrentExports(t, srv, requests, client.Csv, 40*time.Second)
		var ok, rejected, unfinished int
		var others []string
		for _, r := range res.outcomes {
			switch {
			case r.status == http.StatusOK && r.err == nil:
				ok++
			case r.status == http.StatusOK && r.err == context.DeadlineExceeded:
				unfinished++ // still streaming at the deadline: fine for a memory check
			case r.status == http.StatusServiceUnavailable && undocumented503(r.header, r.body) == "":
				rejected++
			default:
				others = append(others, r.String())
			}
		}
		t.Logf("FAULTS memory-csv requests=%d ok=%d unfinished=%d 503s=%d other=%d peak_rss=%s hwm=%s bound=%s took=%s",
			requests, ok, unfinished, rejected, len(others), mib(res.peak), mib(res.hwm), mib(memoryBound), secs(res.took))
		res.assertBound(t)
		if len(others) > 0 {
			t.Errorf("answers other than a full export or a documented 503: %s", strings.Join(others[:min(len(others), 5)], "; "))
		}
	})
	t.Run("chunks", func(t *testing.T) {
		const (
			posts     = 64
			uploads   = 8
			chunkSize = 16 << 20 // MAX_CHUNK_BYTES' default
		)
		db := createDatabase(t, "chunks")
		srv := startServer(t, serverConfig{db: db})
		hc := newHTTPClient(2 * time.Minute)
		defer hc.CloseIdleConnections()
		c := srv.api(t, hc)
		data := bytes.Repeat([]byte("2024-01-01T00:00:00Z,55.5,1234.5,80,10.5,D\n"), chunkSize/43+1)[:chunkSize]
		mem := sampleMemory(srv.pid(), 50*time.Millisecond, memoryGuard, srv.kill)
		began := time.Now()
		results := make([]result, posts)
		var wg sync.WaitGroup
		for i := range posts {
			wg.Go(func() {
				results[i] = postChunk(t.Context(), c, "fx-chunks", fmt.Sprintf("big-%d.csv", i%uploads), i/uploads, posts/uploads, data)
			})
		}
		wg.Wait()
		took := time.Since(began)
		mem.stop()
		peak, hwm := mem.peak(time.Time{}, time.Time{})
		var ok, rejected int
		var others []string
		for _, r := range results {
			switch {
			case r.status == http.StatusOK:
				ok++
			case r.status == http.StatusServiceUnavailable && undocumented503(r.header, r.body) == "":
				rejected++
			default:
				others = append(others, r.String())
			}
		}
		t.Logf("FAULTS memory-chunks posts=%d chunk=%s ok=%d 503s=%d other=%d peak_rss=%s hwm=%s bound=%s took=%s",
			posts, mib(chunkSize), ok, rejected, len(others), mib(peak), mib(hwm), mib(memoryBound), secs(took))
		if mem.guardTripped() {
			t.Errorf("the server's RSS passed %s and it was killed", mib(memoryGuard))
		}
		if peak > memoryBound {
			t.Errorf("peak RSS %s, want under %s", mib(peak), mib(memoryBound))
		}
		if len(others) > 0 {
			t.Errorf("answers other than 200 or a documented 503: %s", strings.Join(others[:min(len(others), 5)], "; "))
		}
	})
}

// readExport reads an export: a 200's body is discarded, another's kept.
func readExport(resp *http.Response, err error) result {
	if err != nil || resp.StatusCode != http.StatusOK {
		return read(resp, err)
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return result{status: resp.StatusCode, header: resp.Header, err: err}
}

// exportOutcome is one of concurrentExports' requests.
type exportOutcome struct {
	status int
	header http.Header
	head   []byte // the first bytes of a 200's body
	body   []byte // a non-200's body
	took   time.Duration
	err    error // of reading a 200's body; context.DeadlineExceeded when cut at the deadline
}

func (o exportOutcome) String() string {
	if o.status == 0 {
		return fmt.Sprintf("error: %v", o.err)
	}
	return fmt.Sprintf("%d after %s (%v) %.200s", o.status, ms(o.took), o.err, o.body)
}

type exportRun struct {
	outcomes  []exportOutcome
	peak, hwm int64
	took      time.Duration
	tripped   bool
}

func (r exportRun) assertBound(t *testing.T) {
	t.Helper()
	if r.tripped {
		t.Errorf("the server's RSS passed %s and it was killed", mib(memoryGuard))
	}
	if r.peak > memoryBound {
		t.Errorf("peak RSS %s, want under %s", mib(r.peak), mib(memoryBound))
	}
}

// concurrentExports sends n export requests of bigVehicle at once and reads every 200 at
// full speed until within, sampling the server's memory every 50 ms.
func concurrentExports(t *testing.T, srv *server, n int, format client.ExportVehicleDataParamsExport, within time.Duration) exportRun {
	t.Helper()
	hc := newHTTPClient(0)
	// A workbook is assembled before its headers go out: only the deadline bounds them.
	hc.Transport.(*http.Transport).ResponseHeaderTimeout = 0
	defer hc.CloseIdleConnections()
	c := srv.api(t, hc)
	ctx, cancel := context.WithTimeout(t.Context(), within)
	defer cancel()
	mem := sampleMemory(srv.pid(), 50*time.Millisecond, memoryGuard, srv.kill)
	began := time.Now()
	outcomes := make([]exportOutcome, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			o := &outcomes[i]
			sent := time.Now()
			resp, err := c.ExportVehicleData(ctx, &client.ExportVehicleDataParams{VehicleId: ptr(bigVehicle), Export: ptr(format)})
			o.took = time.Since(sent)
			if err != nil {
				o.err = err
				return
			}
			defer resp.Body.Close()
			o.status, o.header = resp.StatusCode, resp.Header
			if o.status != http.StatusOK {
				o.body, o.err = io.ReadAll(io.LimitReader(resp.Body, 4096))
				return
			}
			o.head = make([]byte, 2)
			if _, o.err = io.ReadFull(resp.Body, o.head); o.err == nil {
				_, o.err = io.Copy(io.Discard, resp.Body)
			}
			if ctx.Err() != nil {
				o.err = context.DeadlineExceeded
			}
		})
	}
	wg.Wait()
	took := time.Since(began)
	mem.stop()
	peak, hwm := mem.peak(time.Time{}, time.Time{})
	return exportRun{outcomes: outcomes, peak: peak, hwm: hwm, took: took, tripped: mem.guardTripped()}
}

// 6. Slow-loris connections are cut off by the header timeout while other requests keep
// answering; oversized headers are a 431 and an oversized body a 413.
func TestSlowLorisAndOversized(t *testing.T) {
	const (
		loris    = 16
		maxChunk = 1 << 20
	)
	// The binary's ReadHeaderTimeout is 10 s; a flag to set it may exist by now.
	cfg := serverConfig{db: createDatabase(t, "loris"), env: map[string]string{"MAX_CHUNK_BYTES": fmt.Sprint(maxChunk)}}
	cutBy := 15 * time.Second
	if hasFlag(t, "read-header-timeout") {
		cfg.args = []string{"--read-header-timeout", "3s"}
		cutBy = 5 * time.Second
	}
	srv := startServer(t, cfg)
	ctx := t.Context()
	hc := newHTTPClient(5 * time.Second)
	defer hc.CloseIdleConnections()
	c := srv.api(t, hc)

	// The loris: a request line, then a header one byte a second, never finished.
	cut := make([]time.Duration, loris)
	var wg sync.WaitGroup
	for i := range loris {
		wg.Go(func() {
			cut[i] = -1
			conn, err := net.DialTimeout("tcp", srv.addr, 5*time.Second)
			if err != nil {
				return
			}
			defer conn.Close()
			began := time.Now()
			_ = conn.SetDeadline(began.Add(cutBy + 5*time.Second))
			if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: "+srv.addr+"\r\nX-Slow: "); err != nil {
				return
			}
			closed := make(chan struct{})
			go func() {
				// Whatever the server sends (nothing, or an error status), it ends with a close.
				_, _ = io.Copy(io.Discard, conn)
				close(closed)
			}()
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				select {
				case <-closed:
					cut[i] = time.Since(began)
					return
				case <-tick.C:
					if _, err := conn.Write([]byte("a")); err != nil {
						<-closed
						cut[i] = time.Since(began)
						return
					}
				}
			}
		})
	}
	// Meanwhile, ordinary requests.
	lat := newLatencies()
	lorisDone := make(chan struct{})
	var lw sync.WaitGroup
	lw.Go(func() {
		for {
			select {
			case <-lorisDone:
				return
			case <-time.After(100 * time.Millisecond):
			}
			began := time.Now()
			status, _, err := drain(c.GetHealth(ctx))
			lat.add("healthz", time.Since(began), status, err)
			began = time.Now()
			status, _, err = drain(c.ListVehicles(ctx, nil))
			lat.add("vehicles", time.Since(began), status, err)
		}
	})
	wg.Wait()
	close(lorisDone)
	lw.Wait()
	var slowest time.Duration
	uncut := 0
	for _, d := range cut {
		if d < 0 || d > cutBy {
			uncut++
		}
		slowest = max(slowest, d)
	}

	// 2 MiB of headers.
	headerStatus, headerErr := oversizedHeaders(srv.addr, 2<<20)
	// A body over the limits: a chunk over MAX_CHUNK_BYTES, a JSON body over 1 MiB.
	chunk := postChunk(ctx, c, "fx-loris", "big.csv", 0, 1, bytes.Repeat([]byte("x"), 2*maxChunk))
	create := read(c.CreateVehicleDataWithBody(ctx, "application/json", bytes.NewReader(append([]byte(`{"vehicle_id":"`), bytes.Repeat([]byte("x"), 2<<20)...))))
	healthy := read(c.GetReadiness(ctx))

	t.Logf("FAULTS slow-loris conns=%d cut_within=%s slowest_cut=%s uncut=%d others_n=%d others_p99=%s others_max=%s others_non2xx=%d others_errors=%d",
		loris, secs(cutBy), secs(slowest), uncut, lat.count(), ms(lat.pct(99)), ms(lat.pct(100)), lat.non2xx(), lat.errors())
	t.Logf("FAULTS oversized headers_2MiB=%d chunk_2MiB=%d json_2MiB=%d readyz_after=%d", headerStatus, chunk.status, create.status, healthy.status)

	if uncut > 0 {
		t.Errorf("%d of %d slow-loris connections were not closed within %s (slowest %s)", uncut, loris, cutBy, secs(slowest))
	}
	if lat.count() == 0 || lat.non2xx() > 0 || lat.errors() > 0 || lat.pct(100) > time.Second {
		t.Errorf("requests during the slow-loris: n=%d, %d non-2xx, %d errors, max %s; first: %s", lat.count(), lat.non2xx(), lat.errors(), ms(lat.pct(100)), lat.failures())
	}
	if headerStatus != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("2 MiB of headers: status %d (%v), want 431", headerStatus, headerErr)
	}
	if chunk.status != http.StatusRequestEntityTooLarge || chunk.detail() == "" {
		t.Errorf("a chunk over MAX_CHUNK_BYTES: %s, want 413 with a detail", chunk)
	}
	if create.status != http.StatusRequestEntityTooLarge || create.detail() == "" {
		t.Errorf("a JSON body over 1 MiB: %s, want 413 with a detail", create)
	}
	if healthy.status != http.StatusOK {
		t.Errorf("/readyz afterwards: %s", healthy)
	}
}

// oversizedHeaders sends a request with size bytes of headers and reads the status.
func oversizedHeaders(addr string, size int) (int, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	var b bytes.Buffer
	b.WriteString("GET /healthz HTTP/1.1\r\nHost: " + addr + "\r\n")
	pad := strings.Repeat("p", 1000)
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, "X-Pad-%d: %s\r\n", i, pad)
	}
	b.WriteString("\r\n")
	// The server answers before it has read everything: write and read at once.
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = conn.Write(b.Bytes()) })
	defer wg.Wait()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	_ = conn.Close() // ends the writer too
	return resp.StatusCode, nil
}

// 7. Upload quotas: an upload over MAX_UPLOAD_BYTES is a 413, one over
// MAX_PENDING_UPLOAD_BYTES a 507, both naming the limit; nothing is half-stored.
func TestUploadQuotas(t *testing.T) {
	const (
		maxUpload  = 3 << 20
		maxPending = 5 << 20
		chunk      = 2 << 20
		vehicle    = "fx-quota"
	)
	srv := startServer(t, serverConfig{db: createDatabase(t, "quota"), env: map[string]string{
		// An upload must be able to hold one chunk of the maximum size: the server refuses
		// a per-upload limit below the chunk limit.
		"MAX_CHUNK_BYTES":          fmt.Sprint(chunk),
		"MAX_UPLOAD_BYTES":         fmt.Sprint(maxUpload),
		"MAX_PENDING_UPLOAD_BYTES": fmt.Sprint(maxPending),
	}})
	ctx := t.Context()
	hc := newHTTPClient(30 * time.Second)
	defer hc.CloseIdleConnections()
	c := srv.api(t, hc)
	data := bytes.Repeat([]byte("x"), chunk)

	// a.csv: 2 MiB, then 2 more (4 > 3 MiB for one upload).
	a0 := postChunk(ctx, c, vehicle, "a.csv", 0, 3, data)
	a1 := postChunk(ctx, c, vehicle, "a.csv", 1, 3, data)
	// b.csv: 2 MiB (4 MiB pending); c.csv: 2 more (6 > 5 MiB pending).
	b0 := postChunk(ctx, c, vehicle, "b.csv", 0, 2, data)
	c0 := postChunk(ctx, c, vehicle, "c.csv", 0, 2, data)
	status := func(file string) (result, client.UploadStatus) {
		r := read(c.GetUploadStatus(ctx, &client.GetUploadStatusParams{VehicleId: vehicle, FileName: file}))
		var s client.UploadStatus
		_ = json.Unmarshal(r.body, &s)
		return r, s
	}
	aStatus, a := status("a.csv")
	bStatus, b := status("b.csv")
	cStatus, cs := status("c.csv")
	stored, err := queryInt(ctx, srv.cfg.db, `SELECT COALESCE(sum(size), 0)::bigint FROM upload_chunks`)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("FAULTS upload-quotas a0=%d a1_over_upload=%d b0=%d c0_over_pending=%d a_chunks=%v a_bytes=%d b_chunks=%v c_status=%d c_chunks=%v stored=%s",
		a0.status, a1.status, b0.status, c0.status, a.ReceivedChunks, a.Bytes, b.ReceivedChunks, cStatus.status, cs.ReceivedChunks, mib(stored))

	if a0.status != http.StatusOK || b0.status != http.StatusOK {
		t.Fatalf("chunks within the limits: %s; %s", a0, b0)
	}
	if a1.status != http.StatusRequestEntityTooLarge || !namesLimit(a1.detail(), maxUpload, "MAX_UPLOAD_BYTES", "max-upload-bytes") {
		t.Errorf("a chunk taking an upload past MAX_UPLOAD_BYTES: %s, want 413 whose detail names the limit", a1)
	}
	if c0.status != http.StatusInsufficientStorage || !namesLimit(c0.detail(), maxPending, "MAX_PENDING_UPLOAD_BYTES", "max-pending-upload-bytes") {
		t.Errorf("a chunk taking the pending uploads past MAX_PENDING_UPLOAD_BYTES: %s, want 507 whose detail names the limit", c0)
	}
	if aStatus.status != http.StatusOK || fmt.Sprint(a.ReceivedChunks) != "[0]" || a.Bytes != chunk {
		t.Errorf("a.csv after its refused chunk: %s, want chunk 0 only (%d bytes)", aStatus, chunk)
	}
	if bStatus.status != http.StatusOK || fmt.Sprint(b.ReceivedChunks) != "[0]" {
		t.Errorf("b.csv: %s, want chunk 0", bStatus)
	}
	if cStatus.status == http.StatusOK && len(cs.ReceivedChunks) > 0 {
		t.Errorf("c.csv after its refused chunk: %s, want nothing stored", cStatus)
	}
	if stored != 2*chunk {
		t.Errorf("%d bytes of chunks stored, want %d (a's and b's first chunks)", stored, 2*chunk)
	}
}

// namesLimit says whether a detail names a limit: its setting, or its size.
func namesLimit(detail string, limit int64, env, flag string) bool {
	for _, s := range []string{env, flag, fmt.Sprint(limit), fmt.Sprintf("%d MiB", limit>>20), fmt.Sprintf("%dMiB", limit>>20)} {
		if strings.Contains(detail, s) {
			return true
		}
	}
	return false
}
