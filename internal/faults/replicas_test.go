//go:build faults

package faults_test

// Replicas: three servers on one database behind nginx (nginx_test.go), checking what the
// service promises a fleet: any replica takes any chunk, one finalize of an upload runs at
// a time, the purge and the migrations run on every replica at once, page links name the
// proxy, and a rolling restart loses no request.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vehicle-data/vehicle-data/db/migrations"
	"github.com/vehicle-data/vehicle-data/gen/client"
)

const replicaCount = 3

// cluster is replicaCount servers on one database and nginx in front of them.
type cluster struct {
	replicas []*server
	proxy    *proxy
}

// startCluster starts the replicas one after the other (the database is migrated), then nginx.
func startCluster(t *testing.T, db string, env map[string]string) *cluster {
	t.Helper()
	cl := &cluster{}
	var upstreams []string
	for range replicaCount {
		s := startServer(t, serverConfig{db: db, env: env})
		cl.replicas = append(cl.replicas, s)
		upstreams = append(upstreams, s.addr)
	}
	cl.proxy = startNginx(t, upstreams)
	return cl
}

// api is the generated client through the proxy.
func (cl *cluster) api(t testing.TB, hc *http.Client) *client.Client {
	t.Helper()
	c, err := client.NewClient(cl.proxy.base, client.WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// requestCounts reads vehicle_data_http_requests_total of route and method, status 2xx, from
// every replica's own /metrics.
func (cl *cluster) requestCounts(t testing.TB, hc *http.Client, route, method string) []int {
	t.Helper()
	out := make([]int, len(cl.replicas))
	for i, s := range cl.replicas {
		n, err := metricSum(t.Context(), hc, s.base, "vehicle_data_http_requests_total",
			func(labels string) bool {
				return strings.Contains(labels, `route="`+route+`"`) && strings.Contains(labels, `method="`+method+`"`) &&
					strings.Contains(labels, `status="2`)
			})
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		out[i] = int(n)
	}
	return out
}

// metricSum sums the samples of the metric name on base's /metrics whose labels match.
func metricSum(ctx context.Context, hc *http.Client, base, name string, match func(labels string) bool) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
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
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest != "" && rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		labels, value := "", rest
		if strings.HasPrefix(rest, "{") {
			end := strings.LastIndex(rest, "}")
			labels, value = rest[1:end], rest[end+1:]
		}
		if match != nil && !match(labels) {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return 0, fmt.Errorf("%q: %w", line, err)
		}
		sum += f
	}
	return sum, sc.Err()
}

func delta(after, before []int) []int {
	out := make([]int, len(after))
	for i := range after {
		out[i] = after[i] - before[i]
	}
	return out
}

func sumInts(v []int) int {
	n := 0
	for _, x := range v {
		n += x
	}
	return n
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

const (
	routeChunk    = "/api/v1/vehicle_data/upload_chunk/"
	routeFinalize = "/api/v1/vehicle_data/finalize_upload/"
)

// listCount is a list's count of vehicle's records.
func listCount(ctx context.Context, c *client.Client, vehicle string) (int64, error) {
	r := read(c.ListVehicleData(ctx, &client.ListVehicleDataParams{VehicleId: ptr(vehicle), PageSize: ptr[int32](1)}))
	var page client.VehicleDataPage
	if r.status != http.StatusOK || json.Unmarshal(r.body, &page) != nil {
		return 0, fmt.Errorf("list %s: %s", vehicle, r)
	}
	return page.Count, nil
}

// finalizeResult decodes a 200 of a finalize.
func finalizeResult(r result) (client.FinalizeResult, error) {
	var res client.FinalizeResult
	if r.status != http.StatusOK {
		return res, fmt.Errorf("finalize: %s", r)
	}
	if err := json.Unmarshal(r.body, &res); err != nil {
		return res, fmt.Errorf("finalize answer %s: %w", r, err)
	}
	return res, nil
}

// Checks 1, 2, 5 and 6 of the replicas on one cluster; the rolling restart goes last.
func TestReplicasBehindNginx(t *testing.T) {
	const (
		seedVehicle = "fx-rep"
		seedRows    = 5000
	)
	db := createDatabase(t, "replicas")
	if err := loadRows(t.Context(), db, seedVehicle, seedRows); err != nil {
		t.Fatal(err)
	}
	// LOG_LEVEL info: the rolling restart reads each replica's "listener closed" record.
	cl := startCluster(t, db, map[string]string{"DRAIN_DELAY": "2s", "SHUTDOWN_TIMEOUT": "10s", "LOG_LEVEL": "info"})

	t.Run("chunks-spread", func(t *testing.T) { replicasChunksSpread(t, cl, db) })
	t.Run("concurrent-finalize", func(t *testing.T) { replicasConcurrentFinalize(t, cl, db) })
	t.Run("page-links", func(t *testing.T) { replicasPageLinks(t, cl, seedVehicle) })
	t.Run("rolling-restart", func(t *testing.T) { replicasRollingRestart(t, cl, db, seedVehicle) })
}

// 1. The chunks of one upload land on every replica; the finalize, on any, stores every row.
func replicasChunksSpread(t *testing.T, cl *cluster, db string) {
	const (
		vehicle = "fx-rep-spread"
		file    = "spread.csv"
		rows    = 30_000
		chunks  = 9
	)
	ctx := t.Context()
	hc := newHTTPClient(time.Minute)
	defer hc.CloseIdleConnections()
	c := cl.api(t, hc)
	data := sampleCSV(vehicle, rows)

	chunksBefore := cl.requestCounts(t, hc, routeChunk, http.MethodPost)
	finalBefore := cl.requestCounts(t, hc, routeFinalize, http.MethodPost)
	total, err := uploadFile(ctx, c, vehicle, file, data, len(data)/chunks+1)
	if err != nil {
		t.Fatal(err)
	}
	perReplica := delta(cl.requestCounts(t, hc, routeChunk, http.MethodPost), chunksBefore)
	fin := read(c.FinalizeUpload(ctx, client.FinalizeRequest{VehicleId: vehicle, FileName: file, TotalChunks: int32(total)}))
	finalizedBy := delta(cl.requestCounts(t, hc, routeFinalize, http.MethodPost), finalBefore)
	res, err := finalizeResult(fin)
	if err != nil {
		t.Fatal(err)
	}
	listed, err := listCount(ctx, c, vehicle)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := queryInt(ctx, db, `SELECT count(*) FROM vehicle_data WHERE vehicle_id = $1`, vehicle)
	if err != nil {
		t.Fatal(err)
	}
	// The largest chunk the server takes (MAX_CHUNK_BYTES' default) passes the proxy's
	// client_max_body_size with its form.
	full := postChunk(ctx, c, vehicle, "full.csv", 0, 2, bytes.Repeat([]byte("x"), 16<<20))
	t.Logf("FAULTS replicas-chunks-spread rows=%d chunks=%d chunks_per_replica=%s finalize=%d finalized_by=%s inserted=%d listed=%d stored=%d chunk_16MiB=%d",
		rows, total, joinInts(perReplica), fin.status, joinInts(finalizedBy), res.RowsInserted, listed, stored, full.status)
	if full.status != http.StatusOK {
		t.Errorf("a 16 MiB chunk through the proxy: %s", full)
	}

	for i, n := range perReplica {
		if n == 0 {
			t.Errorf("replica %d took none of the %d chunks (per replica: %s)", i, total, joinInts(perReplica))
		}
	}
	if sum := sumInts(perReplica); sum != total {
		t.Errorf("the replicas count %d chunks, want %d", sum, total)
	}
	if res.RowsInserted != rows || res.RowsDuplicate != 0 || res.RowsInvalid != 0 || listed != rows || stored != rows {
		t.Errorf("finalize: %d inserted, %d duplicate, %d invalid, %d listed, %d stored; want %d rows once",
			res.RowsInserted, res.RowsDuplicate, res.RowsInvalid, listed, stored, rows)
	}
}

// 2. Finalizes of one upload sent at once to every replica (and one through the proxy):
// one 200, the others 409, the rows once.
func replicasConcurrentFinalize(t *testing.T, cl *cluster, db string) {
	const (
		vehicle = "fx-rep-race"
		file    = "race.csv"
		// Enough for a finalize of a second or more, so that the others all meet it running.
		rows = 150_000
	)
	ctx := t.Context()
	hc := newHTTPClient(2 * time.Minute)
	defer hc.CloseIdleConnections()
	viaProxy := cl.api(t, hc)
	total, err := uploadFile(ctx, viaProxy, vehicle, file, sampleCSV(vehicle, rows), 2<<20)
	if err != nil {
		t.Fatal(err)
	}
	targets := []*client.Client{viaProxy}
	for _, s := range cl.replicas {
		targets = append(targets, s.api(t, hc))
	}
	results := make([]result, len(targets))
	took := make([]time.Duration, len(targets))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, c := range targets {
		wg.Go(func() {
			<-start
			began := time.Now()
			results[i] = read(c.FinalizeUpload(ctx, client.FinalizeRequest{VehicleId: vehicle, FileName: file, TotalChunks: int32(total)}))
			took[i] = time.Since(began)
		})
	}
	close(start)
	wg.Wait()

	var ok, conflicts int
	var res client.FinalizeResult
	var others []string
	var okTook time.Duration
	for i, r := range results {
		switch {
		case r.status == http.StatusOK:
			ok++
			okTook = took[i]
			if res, err = finalizeResult(r); err != nil {
				t.Error(err)
			}
		case r.status == http.StatusConflict && r.detail() != "":
			conflicts++
		default:
			others = append(others, fmt.Sprintf("target %d: %s", i, r))
		}
	}
	listed, err := listCount(ctx, viaProxy, vehicle)
	if err != nil {
		t.Fatal(err)
	}
	distinct, err := queryInt(ctx, db, `SELECT count(DISTINCT "timestamp") FROM vehicle_data WHERE vehicle_id = $1`, vehicle)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("FAULTS replicas-concurrent-finalize rows=%d finalizes=%d ok=%d conflicts=%d other=%d finalize_took=%s inserted=%d listed=%d distinct=%d",
		rows, len(targets), ok, conflicts, len(others), secs(okTook), res.RowsInserted, listed, distinct)

	if ok != 1 || conflicts != len(targets)-1 || len(others) > 0 {
		t.Errorf("want one 200 and %d 409s, got %d and %d; others: %s", len(targets)-1, ok, conflicts, strings.Join(others, "; "))
	}
	if res.RowsInserted != rows || listed != rows || distinct != rows {
		t.Errorf("%d inserted, %d listed, %d distinct timestamps; want %d rows once", res.RowsInserted, listed, distinct, rows)
	}
}

// 6. Page links of a list through the proxy name the proxy, whichever replica answered;
// they and the cursors work on every replica.
func replicasPageLinks(t *testing.T, cl *cluster, vehicle string) {
	ctx := t.Context()
	hc := newHTTPClient(30 * time.Second)
	defer hc.CloseIdleConnections()
	c := cl.api(t, hc)
	// A client's X-Forwarded-Proto is nginx's to replace: the links keep nginx's scheme.
	spoof := func(_ context.Context, req *http.Request) error {
		req.Header.Set("X-Forwarded-Proto", "https")
		return nil
	}
	r := read(c.ListVehicleData(ctx, &client.ListVehicleDataParams{VehicleId: ptr(vehicle), Page: ptr[int32](2), PageSize: ptr[int32](10)}, spoof))
	var page client.VehicleDataPage
	if r.status != http.StatusOK || json.Unmarshal(r.body, &page) != nil {
		t.Fatalf("list: %s", r)
	}
	var bad []string
	checkLink := func(name string, link *string) *url.URL {
		if link == nil {
			bad = append(bad, name+" is null")
			return nil
		}
		u, err := url.Parse(*link)
		if err != nil || u.Scheme != "http" || u.Host != cl.proxy.addr {
			bad = append(bad, fmt.Sprintf("%s is %q, want http://%s/...", name, *link, cl.proxy.addr))
			return nil
		}
		return u
	}
	next := checkLink("next", page.Next)
	checkLink("previous", page.Previous)

	// Follow next through the proxy (round robin: a replica each time) and a cursor from one
	// replica on each of the others.
	followed := 0
	for link := next; link != nil && followed < replicaCount; followed++ {
		r := read(hc.Get(link.String()))
		var p client.VehicleDataPage
		if r.status != http.StatusOK || json.Unmarshal(r.body, &p) != nil || len(p.Results) == 0 {
			bad = append(bad, fmt.Sprintf("following %s: %s", link, r))
			break
		}
		link = checkLink(fmt.Sprintf("next of page %d", followed+3), p.Next)
	}
	r = read(cl.replicas[0].api(t, hc).ListVehicleData(ctx, &client.ListVehicleDataParams{VehicleId: ptr(vehicle), PageSize: ptr[int32](10)}))
	var first client.VehicleDataPage
	if r.status != http.StatusOK || json.Unmarshal(r.body, &first) != nil || first.NextCursor == nil {
		t.Fatalf("list on replica 0: %s", r)
	}
	cursors := 0
	for i, s := range cl.replicas[1:] {
		r := read(s.api(t, hc).ListVehicleData(ctx, &client.ListVehicleDataParams{VehicleId: ptr(vehicle), PageSize: ptr[int32](10), Cursor: first.NextCursor}))
		var p client.VehicleDataPage
		if r.status != http.StatusOK || json.Unmarshal(r.body, &p) != nil || len(p.Results) == 0 || p.Results[0].Id == first.Results[0].Id {
			bad = append(bad, fmt.Sprintf("replica 0's cursor on replica %d: %s", i+1, r))
			continue
		}
		cursors++
	}
	nextLink, prevLink := "null", "null"
	if page.Next != nil {
		nextLink = *page.Next
	}
	if page.Previous != nil {
		prevLink = *page.Previous
	}
	t.Logf("FAULTS replicas-page-links proxy=%s next=%s previous=%s followed=%d cursors_across_replicas=%d/%d bad=%d",
		cl.proxy.addr, nextLink, prevLink, followed, cursors, replicaCount-1, len(bad))
	if len(bad) > 0 {
		t.Errorf("page links: %s", strings.Join(bad, "; "))
	}
}

// 5. A rolling restart under a mixed load through the proxy: each replica in turn gets
// SIGTERM (DRAIN_DELAY 2s, SHUTDOWN_TIMEOUT 10s), exits, and is started again on its port;
// no request may fail (no 5xx, no connection error, no 4xx that a replayed POST would get).
func replicasRollingRestart(t *testing.T, cl *cluster, db, seedVehicle string) {
	const (
		warm   = time.Second // load before the first SIGTERM and after the last restart
		stopBy = 20 * time.Second
	)
	ctx := t.Context()
	hc := newHTTPClient(time.Minute)
	defer hc.CloseIdleConnections()
	c := cl.api(t, hc)
	entriesBefore, err := cl.proxy.accessLog()
	if err != nil {
		t.Fatal(err)
	}
	refusedBefore := cl.proxy.errorLogCount("Connection refused")

	var (
		mu       sync.Mutex
		counts   = map[string]int{} // "kind status"
		failures []string
		requests atomic.Int64
		created  atomic.Int64
		inserted atomic.Int64
	)
	// check counts one answer; anything but the expected status is a failure.
	check := func(kind string, want int, r result) bool {
		requests.Add(1)
		mu.Lock()
		defer mu.Unlock()
		counts[fmt.Sprintf("%s %d", kind, r.status)]++
		if r.err == nil && r.status == want {
			return true
		}
		if len(failures) < 10 {
			failures = append(failures, fmt.Sprintf("%s at %s: %s", kind, time.Now().Format("15:04:05.000"), r))
		}
		return false
	}
	nfailures := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for k, v := range counts {
			kind, status, _ := strings.Cut(k, " ")
			want := "200"
			if kind == "create" {
				want = "201"
			}
			if status != want {
				n += v
			}
		}
		return n
	}

	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	running := func() bool { return loadCtx.Err() == nil }
	var wg sync.WaitGroup
	// Lists and retrieves, series and vehicles.
	for w := range 2 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 2))
			for running() {
				r := read(c.ListVehicleData(ctx, &client.ListVehicleDataParams{VehicleId: ptr(seedVehicle),
					Page: ptr(int32(1 + rng.IntN(20))), PageSize: ptr(int32(10 + rng.IntN(91))), Ordering: ptr([]string{"timestamp", "-speed", "odometer"}[rng.IntN(3)])}))
				var page client.VehicleDataPage
				if check("list", http.StatusOK, r) && json.Unmarshal(r.body, &page) == nil && len(page.Results) > 0 {
					check("retrieve", http.StatusOK, read(c.GetVehicleData(ctx, page.Results[rng.IntN(len(page.Results))].Id, nil)))
				}
				check("series", http.StatusOK, read(c.GetVehicleSeries(ctx, seedVehicle, &client.GetVehicleSeriesParams{MaxPoints: ptr[int32](200)})))
				check("vehicles", http.StatusOK, read(c.ListVehicles(ctx, nil)))
			}
		})
	}
	// Creates, one record a request at its own timestamp: a replayed create would be a 409.
	wg.Go(func() {
		at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		for i := 0; running(); i++ {
			r := read(c.CreateVehicleData(ctx, client.VehicleDataInput{VehicleId: "fx-rep-create", Timestamp: at.Add(time.Duration(i) * time.Second),
				Speed: ptr(50.5), Odometer: float64(i), Soc: 80, Elevation: 10, ShiftState: ptr("D")}))
			if check("create", http.StatusCreated, r) {
				created.Add(1)
			}
		}
	})
	// Uploads of small files in two chunks and their finalizes, each its own vehicle.
	for w := range 2 {
		wg.Go(func() {
			for i := 0; running(); i++ {
				vehicle := fmt.Sprintf("fx-rep-up-%d-%d", w, i)
				data := sampleCSV(vehicle, 1000)
				half := len(data) / 2
				ok := true
				for k, part := range [][]byte{data[:half], data[half:]} {
					ok = ok && check("upload_chunk", http.StatusOK, postChunk(ctx, c, vehicle, "rr.csv", k, 2, part))
				}
				if !ok {
					continue
				}
				r := read(c.FinalizeUpload(ctx, client.FinalizeRequest{VehicleId: vehicle, FileName: "rr.csv", TotalChunks: 2}))
				if check("finalize", http.StatusOK, r) {
					if res, err := finalizeResult(r); err == nil {
						inserted.Add(res.RowsInserted)
					}
				}
			}
		})
	}
	// Exports, read whole.
	wg.Go(func() {
		formats := []client.ExportVehicleDataParamsExport{client.Csv, client.Json, client.Ndjson}
		for i := 0; running(); i++ {
			f := formats[i%len(formats)]
			check("export_"+string(f), http.StatusOK, readExport(c.ExportVehicleData(ctx, &client.ExportVehicleDataParams{VehicleId: ptr(seedVehicle), Export: ptr(f)})))
		}
	})

	began := time.Now()
	time.Sleep(warm)
	var downs []string
	for i, s := range cl.replicas {
		p := s.current()
		sigterm := time.Now()
		if err := s.stop(); err != nil {
			t.Errorf("replica %d: %v", i, err)
		}
		exited := time.Since(sigterm)
		if p.err != nil {
			t.Errorf("replica %d exited with %v after SIGTERM, want a clean exit\n%s", i, p.err, s.logTail())
		}
		ready := s.start(t)
		downs = append(downs, fmt.Sprintf("%s+%s", secs(exited), secs(ready.Sub(sigterm)-exited)))
		if exited > stopBy {
			t.Errorf("replica %d took %s to exit", i, secs(exited))
		}
	}
	time.Sleep(warm)
	stopLoad()
	wg.Wait()
	took := time.Since(began)

	entries, err := cl.proxy.accessLog()
	if err != nil {
		t.Fatal(err)
	}
	entries = entries[len(entriesBefore):]
	retried, retriedPOST := 0, 0
	for _, e := range entries {
		if len(e.upstreams) > 1 {
			retried++
			if e.method == http.MethodPost {
				retriedPOST++
			}
		}
	}
	refused := cl.proxy.errorLogCount("Connection refused") - refusedBefore
	stored, err := queryInt(ctx, db, `SELECT count(*) FROM vehicle_data WHERE vehicle_id LIKE 'fx-rep-up-%'`)
	if err != nil {
		t.Fatal(err)
	}
	createdStored, err := listCount(ctx, c, "fx-rep-create")
	if err != nil {
		t.Fatal(err)
	}
	// Each replica, as it stopped, let the server accept the connections the kernel had queued
	// before closing its listener (a plain close resets them, POSTs sent and all): how many.
	var queued []string
	for i, s := range cl.replicas {
		for _, rec := range s.logRecords("closing the listener") {
			t.Errorf("replica %d could not close its listener gracefully: %v", i, rec["err"])
		}
		for _, rec := range s.logRecords("listener closed") {
			queued = append(queued, fmt.Sprint(rec["queued"]))
		}
	}
	if len(queued) != len(downs) {
		t.Errorf("%d replicas logged their listener closed, want %d", len(queued), len(downs))
	}
	failed := nfailures()
	t.Logf("FAULTS replicas-rolling-restart requests=%d failed=%d restarts=%d took=%s exit+start=%s proxied=%d retried=%d retried_post=%d refused_connects=%d queued_at_close=%s created=%d created_listed=%d finalized_rows=%d stored_rows=%d",
		requests.Load(), failed, len(downs), secs(took), strings.Join(downs, ","), len(entries), retried, retriedPOST, refused,
		strings.Join(queued, ","), created.Load(), createdStored, inserted.Load(), stored)
	mu.Lock()
	var answers []string
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		answers = append(answers, fmt.Sprintf("%s=%d", k, counts[k]))
	}
	firstFailures := strings.Join(failures, "; ")
	mu.Unlock()
	t.Logf("rolling restart answers: %s", strings.Join(answers, " "))

	if failed > 0 {
		t.Errorf("%d requests failed through the proxy during the rolling restart; first: %s", failed, firstFailures)
	}
	if createdStored != created.Load() {
		t.Errorf("%d creates answered 201, %d records listed", created.Load(), createdStored)
	}
	if stored != inserted.Load() {
		t.Errorf("finalizes inserted %d rows, %d stored", inserted.Load(), stored)
	}
}

// 3. The purge on every replica at once (every 200 ms, uploads older than 1 s) while a
// finalize of an upload that grows old during it runs: the finalize stores every row, and
// uploads abandoned meanwhile are purged.
func TestReplicasPurgeDuringFinalize(t *testing.T) {
	const (
		vehicle  = "fx-purge"
		file     = "big.csv"
		rows     = 800_000 // a finalize of a few seconds (1.6-1.8 s at 300,000 with the direct COPY: too close)
		maxAge   = time.Second
		interval = 200 * time.Millisecond
		stale    = 6
	)
	db := createDatabase(t, "purge")
	cl := startCluster(t, db, map[string]string{"UPLOAD_MAX_AGE": maxAge.String(), "UPLOAD_PURGE_INTERVAL": interval.String()})
	ctx := t.Context()
	hc := newHTTPClient(2 * time.Minute)
	defer hc.CloseIdleConnections()
	c := cl.api(t, hc)
	purgedBefore := purgedCounts(t, cl, hc)

	total, err := uploadFile(ctx, c, vehicle, file, sampleCSV(vehicle, rows), 4<<20)
	if err != nil {
		t.Fatal(err)
	}
	finalized := make(chan result, 1)
	began := time.Now()
	go func() {
		finalized <- read(c.FinalizeUpload(ctx, client.FinalizeRequest{VehicleId: vehicle, FileName: file, TotalChunks: int32(total)}))
	}()
	// Abandoned uploads: one chunk of two, never finalized.
	for i := range stale {
		if r := postChunk(ctx, c, vehicle, fmt.Sprintf("stale-%d.csv", i), 0, 2, []byte(sampleHeader+"\n")); r.status != http.StatusOK {
			t.Fatalf("stale upload %d: %s", i, r)
		}
	}
	staleAt := time.Now()
	// Until the finalize answers: when are the abandoned uploads gone, and how old is the
	// upload being finalized then (its last chunk came before theirs, so it is older)?
	var fin result
	var staleGoneAfter time.Duration = -1
	bigAge := int64(-1) // ms
	for waiting := true; waiting; {
		select {
		case fin = <-finalized:
			waiting = false
		case <-time.After(100 * time.Millisecond):
		}
		if staleGoneAfter < 0 && uploadsGone(ctx, t, c, vehicle, stale) {
			staleGoneAfter = time.Since(staleAt)
			if waiting {
				// A plain read: FOR UPDATE of the finalize does not block it.
				bigAge, err = queryInt(ctx, db, `SELECT (extract(epoch FROM now() - updated_at) * 1000)::bigint
					FROM uploads WHERE vehicle_id = $1 AND file_name = $2`, vehicle, file)
				if err != nil {
					bigAge = -1 // the finalize committed meanwhile
				}
			}
		}
	}
	finTook := time.Since(began)
	if staleGoneAfter < 0 {
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if uploadsGone(ctx, t, c, vehicle, stale) {
				staleGoneAfter = time.Since(staleAt)
				break
			}
		}
	}
	res, finErr := finalizeResult(fin)
	listed, err := listCount(ctx, c, vehicle)
	if err != nil {
		t.Fatal(err)
	}
	purged := delta(purgedCounts(t, cl, hc), purgedBefore)
	t.Logf("FAULTS replicas-purge-during-finalize rows=%d max_age=%s interval=%s finalize=%d finalize_took=%s inserted=%d listed=%d stale=%d stale_gone_after=%s finalizing_upload_age_then=%s purged_per_replica=%s",
		rows, maxAge, interval, fin.status, secs(finTook), res.RowsInserted, listed, stale, secs(staleGoneAfter),
		secs(time.Duration(bigAge)*time.Millisecond), joinInts(purged))

	if finErr != nil {
		t.Fatal(finErr)
	}
	if res.RowsInserted != rows || listed != rows {
		t.Errorf("%d inserted, %d listed; want %d", res.RowsInserted, listed, rows)
	}
	// The check needs a finalize that outlives the maximum age by a few purges.
	if finTook < maxAge+3*interval {
		t.Errorf("the finalize took %s, under max age + 3 purge intervals: use more rows", secs(finTook))
	}
	switch {
	case staleGoneAfter < 0:
		t.Errorf("the %d abandoned uploads were not all purged within 10 s of the finalize", stale)
	case bigAge < 0:
		t.Errorf("the abandoned uploads went %s after the finalize began, when it had ended: no purge ran while it did", secs(staleAt.Add(staleGoneAfter).Sub(began)))
	case bigAge <= maxAge.Milliseconds():
		t.Errorf("the upload being finalized was %s old when the abandoned uploads were purged, want over %s", secs(time.Duration(bigAge)*time.Millisecond), maxAge)
	}
	if sum := sumInts(purged); sum != stale {
		t.Errorf("the replicas purged %d uploads (%s), want %d", sum, joinInts(purged), stale)
	}
}

func purgedCounts(t *testing.T, cl *cluster, hc *http.Client) []int {
	t.Helper()
	out := make([]int, len(cl.replicas))
	for i, s := range cl.replicas {
		n, err := metricSum(t.Context(), hc, s.base, "vehicle_data_uploads_purged_total", nil)
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		out[i] = int(n)
	}
	return out
}

// uploadsGone says whether every stale-<i>.csv upload of vehicle is a 404.
func uploadsGone(ctx context.Context, t *testing.T, c *client.Client, vehicle string, n int) bool {
	t.Helper()
	for i := range n {
		r := read(c.GetUploadStatus(ctx, &client.GetUploadStatusParams{VehicleId: vehicle, FileName: fmt.Sprintf("stale-%d.csv", i)}))
		switch r.status {
		case http.StatusNotFound:
		case http.StatusOK:
			return false
		default:
			t.Fatalf("upload status of stale-%d.csv: %s", i, r)
		}
	}
	return true
}

// 4. Three replicas started at once on a fresh database, each migrating on start: all
// become ready, and every migration is applied once (goose's session lock).
func TestReplicasMigrateTogether(t *testing.T) {
	name := "fx_migrate"
	ident := `"` + name + `"`
	if err := execSQL(t.Context(), "postgres", "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)", "CREATE DATABASE "+ident); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := execSQL(context.Background(), "postgres", "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	files, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	servers := make([]*server, replicaCount)
	procs := make([]*proc, replicaCount)
	for i := range servers {
		servers[i] = newServer(t, serverConfig{db: name, env: map[string]string{"MIGRATE": "true"}})
	}
	began := time.Now()
	for i, s := range servers {
		procs[i] = s.spawn(t)
	}
	readyAt := make([]time.Time, len(servers))
	errs := make([]error, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Go(func() { readyAt[i], errs[i] = s.waitReady(procs[i]) })
	}
	wg.Wait()
	ready := 0
	readyAfter := make([]string, len(servers))
	for i, err := range errs {
		if err != nil {
			readyAfter[i] = "never"
			t.Errorf("replica %d: %v", i, err)
			continue
		}
		ready++
		readyAfter[i] = secs(readyAt[i].Sub(began))
	}
	ctx := t.Context()
	applied, err := queryInt(ctx, name, `SELECT count(*) FROM goose_db_version WHERE version_id > 0 AND is_applied`)
	if err != nil {
		t.Fatal(err)
	}
	distinct, err := queryInt(ctx, name, `SELECT count(DISTINCT version_id) FROM goose_db_version WHERE version_id > 0`)
	if err != nil {
		t.Fatal(err)
	}
	hc := newHTTPClient(10 * time.Second)
	defer hc.CloseIdleConnections()
	serving := 0
	for _, s := range servers {
		if r := read(s.api(t, hc).ListVehicleData(ctx, &client.ListVehicleDataParams{})); r.status == http.StatusOK {
			serving++
		} else {
			t.Errorf("list on %s: %s", s.addr, r)
		}
	}
	t.Logf("FAULTS replicas-migrate-together replicas=%d ready=%d serving=%d migrations=%d applied_rows=%d distinct_versions=%d ready_after=%s",
		replicaCount, ready, serving, len(files), applied, distinct, strings.Join(readyAfter, ","))
	if applied != int64(len(files)) || distinct != int64(len(files)) {
		t.Errorf("goose_db_version has %d applied rows of %d versions, want each of the %d migrations once", applied, distinct, len(files))
	}
}
