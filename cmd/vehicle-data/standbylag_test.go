//go:build standbylag

// make standby-lag: how far a loopback standby falls behind under a large finalize, and how
// soon after a write a client can read it there. A measurement, not a test of behaviour: it
// is left out of make test by its build tag.

package main

import (
	"bufio"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vehicle-data/vehicle-data/internal/database"
	"github.com/vehicle-data/vehicle-data/internal/sample"
	"github.com/vehicle-data/vehicle-data/internal/uploader"
)

func TestStandbyLag(t *testing.T) {
	rows := 200_000
	if v := os.Getenv("STANDBY_LAG_ROWS"); v != "" {
		rows, _ = strconv.Atoi(v)
	}
	// Durable, as in production: fsync and synchronous commit on both.
	db := startReplicatedWith(t, nil)
	primary, standby := superuser(t, db.primary), superuser(t, db.standby)
	srv := startServe(t, nil, map[string]string{"DATABASE_URL": db.primary.URL(), "READ_DATABASE_URL": db.standby.URL()})
	c := newClient(t, srv)
	eventually(t, "the standby serves reads", func() bool { return ready(t, srv).Status == "ok" })

	// One create at a time: how long until the standby has it.
	var creates []time.Duration
	for i := range 50 {
		r, _ := create(t, c, "lag-single", time.Date(2024, 6, 1, 0, 0, i, 0, time.UTC))
		start := time.Now()
		for {
			var ok bool
			if err := standby.QueryRow(t.Context(), "SELECT EXISTS (SELECT 1 FROM vehicle_data WHERE id = $1)", r.Id).Scan(&ok); err != nil {
				t.Fatal(err)
			}
			if ok {
				break
			}
			time.Sleep(200 * time.Microsecond)
		}
		creates = append(creates, time.Since(start))
	}
	slices.Sort(creates)
	t.Logf("create -> visible on the standby (50 creates): median %v, max %v", creates[len(creates)/2], creates[len(creates)-1])

	path := filepath.Join(t.TempDir(), "lag-bulk.csv")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := sample.Write(f, sample.Options{VehicleID: "lag-bulk", Rows: rows, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	f.Close()

	// Meanwhile: the WAL the standby has not replayed (bytes and, from the primary's positions
	// noted every 10 ms, time), and what the server itself reports.
	ctx, stop := context.WithCancel(t.Context())
	var (
		wg                 sync.WaitGroup
		maxBytes           int64
		maxLag, maxService time.Duration
		degraded           int
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		type note struct {
			at  time.Time
			lsn database.LSN
		}
		var notes []note
		for ctx.Err() == nil {
			at := time.Now()
			p := lsn(ctx, primary, "SELECT pg_current_wal_lsn()::text")
			r := lsn(ctx, standby, "SELECT pg_last_wal_replay_lsn()::text")
			if ctx.Err() != nil {
				return
			}
			notes = append(notes, note{at, p})
			maxBytes = max(maxBytes, int64(p)-int64(r))
			for len(notes) > 1 && notes[1].lsn <= r {
				notes = notes[1:]
			}
			if notes[0].lsn <= r && len(notes) > 1 {
				maxLag = max(maxLag, time.Since(notes[1].at))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			if lag, ok := serviceLag(ctx, srv.addr); ok {
				maxService = max(maxService, lag)
			}
			if ready(t, srv).Status != "ok" {
				degraded++
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	began := time.Now()
	res, err := uploader.UploadFile(t.Context(), path, uploader.Options{Server: "http://" + srv.addr, Parallel: 4})
	if err != nil {
		t.Fatal(err)
	}
	finalized := time.Now()
	for {
		var n int64
		if err := standby.QueryRow(t.Context(), "SELECT COALESCE((SELECT record_count FROM vehicles WHERE vehicle_id = 'lag-bulk'), 0)").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == res.RowsInserted {
			break
		}
		time.Sleep(time.Millisecond)
	}
	visible := time.Since(finalized)
	time.Sleep(time.Second) // the vacuum that follows a big finalize
	stop()
	wg.Wait()
	t.Logf("upload + finalize of %d rows: %v", res.RowsInserted, finalized.Sub(began).Round(time.Millisecond))
	t.Logf("finalize's 200 -> every row visible on the standby: %v", visible.Round(time.Millisecond))
	t.Logf("during it: standby at most %d bytes and %v behind (10 ms polls); the server's lag figure at most %v; /readyz degraded in %d polls of 100 ms",
		maxBytes, maxLag.Round(time.Millisecond), maxService.Round(time.Millisecond), degraded)
}

func lsn(ctx context.Context, conn *pgx.Conn, sql string) database.LSN {
	var s string
	if err := conn.QueryRow(ctx, sql).Scan(&s); err != nil {
		return 0
	}
	l, _ := database.ParseLSN(s)
	return l
}

// serviceLag reads vehicle_data_read_standby_lag_seconds from the server's metrics.
func serviceLag(ctx context.Context, addr string) (time.Duration, bool) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "vehicle_data_read_standby_lag_seconds "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return time.Duration(f * float64(time.Second)), err == nil
		}
	}
	return 0, false
}
