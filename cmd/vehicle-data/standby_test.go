package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vehicle-data/vehicle-data/gen/client"
	"github.com/vehicle-data/vehicle-data/internal/pgembed"
)

// replicated is a primary and a hot standby of it, each a real PostgreSQL from the machine's
// binaries (make deps installs them; without them the test fails, it never skips).
type replicated struct {
	primary, standby *pgembed.Server
	standbyOpts      pgembed.Options // to start it again
}

func startReplicated(t *testing.T) *replicated {
	t.Helper()
	// Durability is worthless here; replication is what is tested.
	return startReplicatedWith(t, map[string]string{"fsync": "off"})
}

// startReplicatedWith starts both with further server settings.
func startReplicatedWith(t *testing.T, settings map[string]string) *replicated {
	t.Helper()
	// The postgres OS user (when we are root) must enter the folders above the data.
	root := t.TempDir()
	for _, d := range []string{filepath.Dir(root), root} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.WithoutCancel(t.Context())
	primary, err := pgembed.Start(ctx, pgembed.Options{DataDir: filepath.Join(root, "primary"), Settings: settings})
	if err != nil {
		t.Fatalf("primary: %v", err)
	}
	t.Cleanup(func() { _ = primary.Stop(context.Background()) })
	r := &replicated{primary: primary, standbyOpts: pgembed.Options{DataDir: filepath.Join(root, "standby"), Primary: primary, Settings: settings}}
	r.startStandby(t)
	r.standbyOpts.Port = r.standby.Port() // the URL the server has names it
	return r
}

func (r *replicated) startStandby(t *testing.T) {
	t.Helper()
	s, err := pgembed.Start(context.WithoutCancel(t.Context()), r.standbyOpts)
	if err != nil {
		t.Fatalf("standby: %v", err)
	}
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	r.standby = s
}

func (r *replicated) stopStandby(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.standby.Stop(ctx); err != nil {
		t.Fatalf("stop standby: %v", err)
	}
}

// superuser connects to a server's application database.
func superuser(t *testing.T, s *pgembed.Server) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), s.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// since returns a server's clock, for poolsUsedSince.
func since(t *testing.T, conn *pgx.Conn) time.Time {
	t.Helper()
	var now time.Time
	if err := conn.QueryRow(t.Context(), "SELECT clock_timestamp()").Scan(&now); err != nil {
		t.Fatal(err)
	}
	return now
}

// poolUsedSince reports whether a session of the server's pool named app (application_name)
// ran a statement after at: which database served a request.
func poolUsedSince(t *testing.T, conn *pgx.Conn, app string, at time.Time) bool {
	t.Helper()
	var n int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
		WHERE application_name = $1 AND state_change > $2`, app, at).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// eventually polls cond for up to 15 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 15s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

type readiness struct {
	code   int
	Status string `json:"status"`
	Detail string `json:"detail"`
}

func ready(t *testing.T, srv *served) readiness {
	t.Helper()
	resp, err := http.Get("http://" + srv.addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := readiness{code: resp.StatusCode}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	return r
}

// count lists vehicle's records and returns their count; a status other than 200 fails the
// test. minLSN, when given, is sent as X-Min-LSN.
func count(t *testing.T, c *client.ClientWithResponses, vehicle string, minLSN ...string) int64 {
	t.Helper()
	params := &client.ListVehicleDataParams{VehicleId: &vehicle}
	if len(minLSN) > 0 {
		params.XMinLSN = &minLSN[0]
	}
	resp, err := c.ListVehicleDataWithResponse(t.Context(), params)
	if err != nil {
		t.Fatal(err)
	}
	if resp.JSON200 == nil {
		t.Fatalf("list: %d %s", resp.StatusCode(), resp.Body)
	}
	return resp.JSON200.Count
}

func newClient(t *testing.T, srv *served) *client.ClientWithResponses {
	t.Helper()
	c, err := client.NewClientWithResponses("http://" + srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// create stores a record and returns it with its X-Write-LSN.
func create(t *testing.T, c *client.ClientWithResponses, vehicle string, at time.Time) (client.VehicleData, string) {
	t.Helper()
	resp, err := c.CreateVehicleDataWithResponse(t.Context(), client.VehicleDataInput{
		VehicleId: vehicle, Timestamp: at, Odometer: 1, Soc: 50, Elevation: 1})
	if err != nil {
		t.Fatal(err)
	}
	if resp.JSON201 == nil {
		t.Fatalf("create: %d %s", resp.StatusCode(), resp.Body)
	}
	lsn := resp.HTTPResponse.Header.Get("X-Write-LSN")
	if lsn == "" {
		t.Errorf("create: no X-Write-LSN")
	}
	return *resp.JSON201, lsn
}

// With --read-database-url, serve reads from the standby while it keeps up, from the primary
// while it is further behind than --max-read-lag or down, and from the standby again once it
// is back; writes and migrations go to the primary; /readyz says degraded meanwhile.
func TestServeReadsFromStandby(t *testing.T) {
	began := time.Now()
	db := startReplicated(t)
	primary, standby := superuser(t, db.primary), superuser(t, db.standby)
	env := map[string]string{"DATABASE_URL": db.primary.URL(), "READ_DATABASE_URL": db.standby.URL()}
	// strict reads from the primary as soon as the standby is 300 ms behind; lenient keeps
	// reading from a standby a whole hour behind, so what it answers is what the standby has.
	strict := startServe(t, []string{"--max-read-lag", "300ms"}, env)
	lenient := startServe(t, []string{"--max-read-lag", "1h"}, env)
	sc, lc := newClient(t, strict), newClient(t, lenient)
	t.Logf("primary, standby and two servers up in %v", time.Since(began).Round(time.Millisecond))

	eventually(t, "the standby serves reads", func() bool { return ready(t, strict).Status == "ok" })
	const vehicle = "standby-veh"
	t0 := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	_, lsn1 := create(t, sc, vehicle, t0)
	eventually(t, "a create is visible in the list once replayed", func() bool { return count(t, sc, vehicle) == 1 })

	t.Run("reads hit the standby", func(t *testing.T) {
		atStandby, atPrimary := since(t, standby), since(t, primary)
		if n := count(t, sc, vehicle, lsn1); n != 1 { // replayed: the standby may answer
			t.Fatalf("count %d, want 1", n)
		}
		resp, err := client.NewClient("http://" + strict.addr)
		if err != nil {
			t.Fatal(err)
		}
		export, err := resp.ExportVehicleData(t.Context(), &client.ExportVehicleDataParams{VehicleId: ptr(vehicle)})
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(export.Body)
		export.Body.Close()
		if export.StatusCode != 200 || strings.Count(string(body), vehicle) != 1 {
			t.Fatalf("export: %d %s", export.StatusCode, body)
		}
		for app, want := range map[string]bool{"vehicle-data/standby-interactive": true, "vehicle-data/standby-export": true} {
			if got := poolUsedSince(t, standby, app, atStandby); got != want {
				t.Errorf("standby: %s used: %v, want %v", app, got, want)
			}
		}
		for _, app := range []string{"vehicle-data/interactive", "vehicle-data/export"} {
			if poolUsedSince(t, primary, app, atPrimary) {
				t.Errorf("primary: %s served a read the standby should have", app)
			}
		}
	})

	t.Run("lagging standby", func(t *testing.T) {
		if _, err := standby.Exec(t.Context(), "SELECT pg_wal_replay_pause()"); err != nil {
			t.Fatal(err)
		}
		r2, lsn2 := create(t, sc, vehicle, t0.Add(time.Second))
		// The lenient server still reads the standby, which has not replayed the write ...
		time.Sleep(200 * time.Millisecond)
		if n := count(t, lc, vehicle); n != 1 {
			t.Errorf("lenient server: count %d with replay paused, want 1 (what the standby has)", n)
		}
		// ... except for a client that asks to see its write, which the primary answers ...
		if n := count(t, lc, vehicle, lsn2); n != 2 {
			t.Errorf("lenient server: count %d with X-Min-LSN %s, want 2 (the primary's)", n, lsn2)
		}
		// ... and a 404 is never the standby's: the new record is found on the primary.
		if resp, err := lc.GetVehicleDataWithResponse(t.Context(), r2.Id, nil); err != nil || resp.JSON200 == nil {
			t.Errorf("lenient server: retrieve of the new record: %v %d", err, resp.StatusCode())
		}
		// The strict server sees the standby fall behind and reads from the primary.
		eventually(t, "strict server degraded", func() bool {
			r := ready(t, strict)
			return r.code == 200 && r.Status == "degraded" && strings.Contains(r.Detail, "behind the primary (max-read-lag 300ms)")
		})
		t.Logf("degraded: %s", ready(t, strict).Detail)
		at := since(t, primary)
		if n := count(t, sc, vehicle); n != 2 {
			t.Errorf("strict server: count %d with the standby behind, want 2 (the primary's)", n)
		}
		if !poolUsedSince(t, primary, "vehicle-data/interactive", at) {
			t.Error("strict server: the primary's interactive pool served no read while the standby lagged")
		}
		if r := ready(t, lenient); r.Status != "ok" {
			t.Errorf("lenient server: readiness %+v, want ok", r)
		}

		if _, err := standby.Exec(t.Context(), "SELECT pg_wal_replay_resume()"); err != nil {
			t.Fatal(err)
		}
		eventually(t, "strict server back on the standby", func() bool { return ready(t, strict).Status == "ok" })
		eventually(t, "lenient server sees the write", func() bool { return count(t, lc, vehicle) == 2 })
	})

	t.Run("standby down and back", func(t *testing.T) {
		standby.Close(t.Context())
		db.stopStandby(t)
		// Right away, before any check has noticed: every read still answers, from the primary.
		for _, c := range []*client.ClientWithResponses{sc, lc} {
			if n := count(t, c, vehicle); n != 2 {
				t.Errorf("count %d with the standby down, want 2", n)
			}
			if resp, err := c.ListVehiclesWithResponse(t.Context(), nil); err != nil || resp.JSON200 == nil {
				t.Errorf("vehicles with the standby down: %v %d", err, resp.StatusCode())
			}
			if resp, err := c.GetVehicleSeriesWithResponse(t.Context(), vehicle, nil); err != nil || resp.JSON200 == nil {
				t.Errorf("series with the standby down: %v %d", err, resp.StatusCode())
			}
		}
		eventually(t, "readiness degraded", func() bool {
			r := ready(t, strict)
			return r.code == 200 && r.Status == "degraded" && r.Detail == "read standby unreachable: reads go to the primary"
		})
		create(t, sc, vehicle, t0.Add(2*time.Second)) // writes never needed it
		if n := count(t, sc, vehicle); n != 3 {
			t.Errorf("count %d after a create with the standby down, want 3", n)
		}

		db.startStandby(t)
		standby = superuser(t, db.standby)
		eventually(t, "readiness ok again", func() bool { return ready(t, strict).Status == "ok" })
		eventually(t, "reads on the standby again", func() bool {
			at := since(t, standby)
			return count(t, sc, vehicle) == 3 && poolUsedSince(t, standby, "vehicle-data/standby-interactive", at)
		})
	})
	if t.Failed() {
		fmt.Fprintln(os.Stderr, strict.logs.String())
	}
	t.Logf("took %v", time.Since(began).Round(time.Millisecond))
}
