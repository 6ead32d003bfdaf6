package ingest_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/vehicle-data/vehicle-data/gen/db"
	"github.com/vehicle-data/vehicle-data/internal/ingest"
)

// pathLog records the path of every finalize from the service's "upload finalized" lines.
type pathLog struct {
	mu    sync.Mutex
	paths []string
}

func (l *pathLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *pathLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *pathLog) WithGroup(string) slog.Handler            { return l }
func (l *pathLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "upload finalized" {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "path" {
			l.mu.Lock()
			l.paths = append(l.paths, a.Value.String())
			l.mu.Unlock()
		}
		return true
	})
	return nil
}

func (l *pathLog) last() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.paths) == 0 {
		return ""
	}
	return l.paths[len(l.paths)-1]
}

// A finalize copies a file none of whose rows can be a duplicate straight into samples, and
// stages any other file; both give the same rows, the new ones with ids in file order when
// copied and in timestamp order when staged.
func TestFinalizePaths(t *testing.T) {
	log := &pathLog{}
	svc, pool := newService(t, ingest.Options{Logger: slog.New(log)})
	at := func(sec int) time.Time { return time.Date(2022, 7, 12, 16, 41, sec, 0, time.UTC) }
	row := func(sec int) string { return at(sec).Format("2006-01-02 15:04:05") + ",1,10,50,0,D\n" }
	tests := []struct {
		name        string
		stored      []int // seconds stored before the finalize
		lines       []int // the file's rows, by second; -1 is an invalid row
		skipInvalid bool
		path        string
		inserted    int64
	}{
		{"new rows", nil, []int{1, 2, 3, 4}, false, "copy", 4},
		{"new rows out of order", nil, []int{3, 1, 2}, false, "copy", 3},
		{"invalid rows skipped", nil, []int{1, -1, 2, -1, 3}, true, "copy", 3},
		{"only invalid rows, skipped", nil, []int{-1, -1}, true, "copy", 0},
		{"after the stored rows", []int{1, 2}, []int{3, 5, 4}, false, "copy", 3},
		{"before the stored rows", []int{4, 5}, []int{1, 2, 3}, false, "copy", 3},
		{"first row stored", []int{1}, []int{1, 2, 3}, false, "staged", 2},
		{"last row stored", []int{3}, []int{1, 2, 3}, false, "staged", 2},
		{"in a gap of the stored rows", []int{1, 4}, []int{2, 3}, false, "staged", 2},
		{"a duplicate in the file", nil, []int{1, 2, 2, 3}, false, "staged", 3},
		{"a duplicate at the file's end", nil, []int{1, 2, 3, 1}, false, "staged", 3},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vehicleID := "paths" + string(rune('a'+i))
			for _, sec := range tt.stored {
				_, err := db.New().CreateVehicleData(t.Context(), pool, db.CreateVehicleDataParams{
					VehicleID: vehicleID, Timestamp: at(sec), Odometer: 9, Soc: 9, Elevation: 9,
				})
				if err != nil {
					t.Fatalf("store a record: %v", err)
				}
			}
			var file strings.Builder
			file.WriteString(realHeader)
			want := slices.Clone(tt.stored)
			for _, sec := range tt.lines {
				if sec < 0 {
					file.WriteString("2022-07-12 16:41:00,1,10,101,0,D\n") // soc out of range
					continue
				}
				file.WriteString(row(sec))
				if !slices.Contains(want, sec) {
					want = append(want, sec)
				}
			}
			slices.Sort(want)
			total := upload(t, svc, vehicleID, "f.csv", []byte(file.String()), 1<<20)
			res := finalize(t, svc, vehicleID, "f.csv", total, tt.skipInvalid)
			if res.RowsInserted != tt.inserted {
				t.Errorf("inserted %d rows, want %d", res.RowsInserted, tt.inserted)
			}
			if got := log.last(); got != tt.path {
				t.Errorf("path = %q, want %q", got, tt.path)
			}
			// The stored rows, and the new rows' ids in the order the path gives them.
			order := `"timestamp"`
			if tt.path == "copy" {
				order = "id"
			}
			rows, err := pool.Query(t.Context(), `SELECT extract(second FROM "timestamp")::int, id FROM vehicle_data WHERE vehicle_id = $1 ORDER BY `+order, vehicleID)
			if err != nil {
				t.Fatal(err)
			}
			var got, inserted []int
			var lastID int64
			for rows.Next() {
				var sec int
				var id int64
				if err := rows.Scan(&sec, &id); err != nil {
					t.Fatal(err)
				}
				got = append(got, sec)
				if !slices.Contains(tt.stored, sec) {
					inserted = append(inserted, sec)
					if id <= lastID {
						t.Errorf("id %d at second %d is not after the id %d before it", id, sec, lastID)
					}
					lastID = id
				}
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("stored seconds %v, want %v", got, want)
			}
			// Copied rows keep the file's order.
			if tt.path == "copy" && !slices.Equal(inserted, validNew(tt.lines, tt.stored)) {
				t.Errorf("new rows by id %v, want the file's order %v", inserted, validNew(tt.lines, tt.stored))
			}
			// A file without a valid row leaves no vehicle behind.
			var vehicles int
			if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM vehicles WHERE vehicle_id = $1`, vehicleID).Scan(&vehicles); err != nil {
				t.Fatal(err)
			}
			if wantN := min(len(want), 1); vehicles != wantN {
				t.Errorf("vehicles named %s: %d, want %d", vehicleID, vehicles, wantN)
			}
		})
	}
}

// validNew is the file's valid rows not stored, in file order.
func validNew(lines, stored []int) []int {
	var out []int
	for _, sec := range lines {
		if sec >= 0 && !slices.Contains(stored, sec) {
			out = append(out, sec)
		}
	}
	return out
}

// A direct COPY inserts in file order, so it can wait for another insert of the vehicle's
// timestamps that waits for it in turn, and so can the staged path's insert (in timestamp order)
// against a direct COPY. The finalize that PostgreSQL makes the deadlock's victim (the one that
// waited first) goes on to the next path, which skips the other's rows, instead of failing.
func TestFinalizeDeadlock(t *testing.T) {
	for _, tt := range []struct {
		name   string
		inSpan bool   // a stored row before the file's too: the staged path
		query  string // the statement that waits, as pg_stat_activity shows it
	}{
		{"direct COPY", false, "copy%samples%"},
		{"staged insert", true, "insert into samples%"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// PostgreSQL aborts the waiter whose deadlock check (after deadlock_timeout, 1 s)
			// finds the cycle. The finalize waits first, so that is nearly always its own; but
			// when the other's wait begins more than a second later (a loaded CI machine) the
			// finalize's one check found no cycle yet, and the other is aborted: such a run
			// shows nothing about the finalize, so it runs again.
			for attempt := 1; finalizeDeadlock(t, tt.inSpan, tt.query); attempt++ {
				if attempt == 3 {
					t.Fatal("the other transaction, which waited second, was the deadlock's victim three times")
				}
				t.Logf("attempt %d: the other transaction was the deadlock's victim; again", attempt)
			}
		})
	}
}

// finalizeDeadlock runs the scenario once; again reports a run whose victim was the other
// transaction.
func finalizeDeadlock(t *testing.T, inSpan bool, query string) (again bool) {
	log := &pathLog{}
	svc, pool := newService(t, ingest.Options{Logger: slog.New(log)})
	ctx := t.Context()
	at := func(sec int) time.Time { return time.Date(2022, 7, 12, 16, 41, sec, 0, time.UTC) }
	store := func(q db.DBTX, sec int) error {
		_, err := db.New().CreateVehicleData(ctx, q, db.CreateVehicleDataParams{VehicleID: "veh1", Timestamp: at(sec), Odometer: 9, Soc: 9, Elevation: 9})
		return err
	}
	// A stored row after the file's: the vehicle exists, and the file takes the direct path;
	// with one before it as well, the staged path.
	stored := []int{50}
	if inSpan {
		stored = append(stored, 0)
	}
	for _, sec := range stored {
		if err := store(pool, sec); err != nil {
			t.Fatal(err)
		}
	}
	file := realHeader + at(1).Format("2006-01-02 15:04:05") + ",1,2,3,4,D\n" + at(2).Format("2006-01-02 15:04:05") + ",1,2,3,4,D\n"
	total := upload(t, svc, "veh1", "f.csv", []byte(file), 1<<20)

	other, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Rollback(context.WithoutCancel(ctx))
	if err := store(other, 2); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	var res ingest.Result
	go func() {
		var err error
		res, err = svc.Finalize(ctx, ingest.FinalizeRequest{VehicleID: "veh1", FileName: "f.csv", Total: total})
		done <- err
	}()
	// The insert has stored second 1 and waits for the other's second 2 ...
	waitFor(t, pool, `SELECT EXISTS (SELECT FROM pg_stat_activity
		WHERE datname = current_database() AND wait_event_type = 'Lock' AND query ILIKE '`+query+`')`, done)
	// ... and the other now waits for its second 1: a deadlock, found after deadlock_timeout.
	if err := store(other, 1); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "40P01" { // deadlock_detected
			other.Rollback(ctx)
			<-done
			return true
		}
		t.Fatal(err)
	}
	if err := other.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Finalize: %v", err)
	}
	if res.RowsInserted != 0 || res.RowsDuplicate != 2 {
		t.Errorf("result = %+v, want 0 inserted, 2 duplicate", res)
	}
	if got := log.last(); got != "staged" {
		t.Errorf("path = %q, want staged", got)
	}
	if got := storedRows(t, pool, "veh1"); len(got) != 2+len(stored) {
		t.Errorf("stored %+v, want the other's seconds 1 and 2 and seconds %v", got, stored)
	}
	return false
}
