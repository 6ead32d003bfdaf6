package ingest_test

import (
	"testing"
	"time"

	"github.com/vehicle-data/vehicle-data/internal/ingest"
)

// A big finalize is followed by a vacuum of samples (hint bits, visibility map, statistics
// for the first readers of the new rows); a small one is left to autovacuum.
func TestVacuumAfterBigFinalize(t *testing.T) {
	svc, pool := newService(t, ingest.Options{})
	// Whether pages become all-visible cannot be checked here: the test server commits
	// asynchronously, and PostgreSQL marks no page of a transaction whose commit is not yet
	// flushed. The vacuum having run (manual vacuums of this database, not autovacuum's) is.
	lastVacuum := func() (n int64) {
		t.Helper()
		if err := pool.QueryRow(t.Context(), "SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'samples'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	total := upload(t, svc, "small", "s.csv", genCSV(100, 1), 1<<20)
	if _, err := svc.Finalize(t.Context(), ingest.FinalizeRequest{VehicleID: "small", FileName: "s.csv", Total: total}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if n := lastVacuum(); n != 0 {
		t.Fatalf("vacuumed after a 100-row finalize (%d)", n)
	}

	total = upload(t, svc, "big", "b.csv", genCSV(20_000, 2), 1<<20)
	if _, err := svc.Finalize(t.Context(), ingest.FinalizeRequest{VehicleID: "big", FileName: "b.csv", Total: total}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for lastVacuum() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no vacuum of samples within 15 s of a 20,000-row finalize")
		}
		time.Sleep(200 * time.Millisecond)
	}
}
