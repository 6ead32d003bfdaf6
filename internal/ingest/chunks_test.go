package ingest_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vehicle-data/vehicle-data/internal/apperr"
	"github.com/vehicle-data/vehicle-data/internal/ingest"
)

func TestPutChunkValidation(t *testing.T) {
	svc, _ := newService(t, ingest.Options{MaxChunkBytes: 10})
	ok := ingest.ChunkMeta{VehicleID: "veh1", FileName: "f.csv", Index: 0, Total: 1}
	with := func(f func(*ingest.ChunkMeta)) ingest.ChunkMeta {
		m := ok
		f(&m)
		return m
	}
	tests := []struct {
		name      string
		meta      ingest.ChunkMeta
		data      string
		wantKind  apperr.Kind // 0: accepted
		wantField string
		wantIn    string
	}{
		{"valid", ok, "0123456789", 0, "", ""},
		{"empty chunk", with(func(m *ingest.ChunkMeta) { m.FileName = "empty.csv" }), "", 0, "", ""},
		{"100 two-byte characters", with(func(m *ingest.ChunkMeta) { m.VehicleID = strings.Repeat("é", 100) }), "x", 0, "", ""},
		{"255 characters", with(func(m *ingest.ChunkMeta) { m.FileName = strings.Repeat("ñ", 255) }), "x", 0, "", ""},
		{"last index", with(func(m *ingest.ChunkMeta) { m.FileName, m.Index, m.Total = "g.csv", 4, 5 }), "x", 0, "", ""},
		{"no vehicle", with(func(m *ingest.ChunkMeta) { m.VehicleID = "" }), "x", apperr.KindInvalid, "vehicle_id", "required"},
		{"long vehicle", with(func(m *ingest.ChunkMeta) { m.VehicleID = strings.Repeat("v", 101) }), "x", apperr.KindInvalid, "vehicle_id", "101"},
		{"vehicle not UTF-8", with(func(m *ingest.ChunkMeta) { m.VehicleID = "v\xff" }), "x", apperr.KindInvalid, "vehicle_id", "UTF-8"},
		{"vehicle with NUL", with(func(m *ingest.ChunkMeta) { m.VehicleID = "v\x00" }), "x", apperr.KindInvalid, "vehicle_id", "NUL"},
		{"no file name", with(func(m *ingest.ChunkMeta) { m.FileName = "" }), "x", apperr.KindInvalid, "file_name", "required"},
		{"long file name", with(func(m *ingest.ChunkMeta) { m.FileName = strings.Repeat("f", 256) }), "x", apperr.KindInvalid, "file_name", "255"},
		{"zero total", with(func(m *ingest.ChunkMeta) { m.Total = 0 }), "x", apperr.KindInvalid, "total_chunks", "between 1"},
		{"huge total", with(func(m *ingest.ChunkMeta) { m.Total = ingest.MaxTotalChunks + 1 }), "x", apperr.KindInvalid, "total_chunks", "between 1"},
		{"negative index", with(func(m *ingest.ChunkMeta) { m.Index = -1 }), "x", apperr.KindInvalid, "chunk_index", "-1"},
		{"index = total", with(func(m *ingest.ChunkMeta) { m.Index, m.Total = 3, 3 }), "x", apperr.KindInvalid, "chunk_index", "between 0 and total_chunks-1 (2)"},
		{"over the limit", ok, "0123456789A", apperr.KindTooLarge, "", "limit is 10 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := svc.PutChunk(t.Context(), tt.meta, []byte(tt.data))
			if tt.wantKind == 0 {
				if err != nil {
					t.Fatalf("PutChunk: %v", err)
				}
				if n != 1 {
					t.Errorf("received = %d, want 1", n)
				}
				return
			}
			wantKind(t, err, tt.wantKind, tt.wantIn)
			if tt.wantField != "" {
				e, _ := apperr.As(err)
				if len(e.Fields) != 1 || e.Fields[0].Field != tt.wantField {
					t.Errorf("fields = %+v, want one naming %s", e.Fields, tt.wantField)
				}
			}
		})
	}
}

func TestPutChunkConcurrentOutOfOrder(t *testing.T) {
	svc, _ := newService(t, ingest.Options{})
	data := genCSV(2000, 1)
	chunks := split(data, len(data)/19) // 20 chunks
	total := len(chunks)
	order := rand.New(rand.NewPCG(3, 4)).Perm(total)

	var wg sync.WaitGroup
	got := make([]int, total)
	errs := make([]error, total)
	for i, idx := range order {
		wg.Go(func() {
			meta := ingest.ChunkMeta{VehicleID: "veh1", FileName: "trip.csv", Index: idx, Total: total}
			got[i], errs[i] = svc.PutChunk(t.Context(), meta, chunks[idx])
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("PutChunk(%d): %v", order[i], err)
		}
	}
	// Chunks of one upload are stored one after another (the upload row's lock), so the
	// counts are exactly 1..total, each once.
	slices.Sort(got)
	for i, n := range got {
		if n != i+1 {
			t.Fatalf("received counts = %v, want 1..%d each once", got, total)
		}
	}
	st, err := svc.Status(t.Context(), "veh1", "trip.csv")
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if len(st.Received) != total || len(st.Missing) != 0 || st.Bytes != int64(len(data)) {
		t.Errorf("status = %d received, missing %v, %d bytes; want %d, none, %d", len(st.Received), st.Missing, st.Bytes, total, len(data))
	}
	// Index order, not arrival order, makes the file: every row must come through valid.
	res := finalize(t, svc, "veh1", "trip.csv", total, false)
	if res.RowsInserted != 2000 || res.RowsInvalid != 0 {
		t.Errorf("finalize = %+v, want 2000 rows inserted, none invalid", res)
	}
}

func TestPutChunkRetryReplaces(t *testing.T) {
	svc, pool := newService(t, ingest.Options{})
	put := func(index int, data string) int {
		t.Helper()
		n, err := svc.PutChunk(t.Context(), ingest.ChunkMeta{VehicleID: "veh1", FileName: "f.csv", Index: index, Total: 2}, []byte(data))
		if err != nil {
			t.Fatalf("PutChunk(%d): %v", index, err)
		}
		return n
	}
	if n := put(1, "2022-07-12 16:41:00,1,2,3,4,D\n"); n != 1 {
		t.Errorf("first put: received = %d, want 1", n)
	}
	// A broken first attempt, then the retry of the same index.
	if n := put(0, "garbage"); n != 2 {
		t.Errorf("second put: received = %d, want 2", n)
	}
	if n := put(0, realHeader); n != 2 {
		t.Errorf("retry: received = %d, want 2 (the same index replaces)", n)
	}
	st, err := svc.Status(t.Context(), "veh1", "f.csv")
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if want := int64(len(realHeader) + 30); st.Bytes != want {
		t.Errorf("bytes = %d, want %d (the replaced chunk's size)", st.Bytes, want)
	}
	res := finalize(t, svc, "veh1", "f.csv", 2, false)
	if res.RowsInserted != 1 {
		t.Errorf("rows inserted = %d, want 1", res.RowsInserted)
	}
	if rows := storedRows(t, pool, "veh1"); len(rows) != 1 || rows[0].Timestamp != "2022-07-12T16:41:00.000000Z" {
		t.Errorf("stored %+v, want the row of 2022-07-12T16:41:00Z", rows)
	}
}

func TestPutChunkTotalMismatch(t *testing.T) {
	svc, _ := newService(t, ingest.Options{})
	if _, err := svc.PutChunk(t.Context(), ingest.ChunkMeta{VehicleID: "veh1", FileName: "f.csv", Index: 0, Total: 3}, []byte("a")); err != nil {
		t.Fatalf("PutChunk: %v", err)
	}
	_, err := svc.PutChunk(t.Context(), ingest.ChunkMeta{VehicleID: "veh1", FileName: "f.csv", Index: 1, Total: 4}, []byte("b"))
	wantKind(t, err, apperr.KindConflict, "total_chunks is 4", "total_chunks 3")

	st, err := svc.Status(t.Context(), "veh1", "f.csv")
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if st.Total != 3 || !slices.Equal(st.Received, []int{0}) {
		t.Errorf("status = total %d, received %v; want 3, [0] (the rejected chunk is not stored)", st.Total, st.Received)
	}
}

func TestUploadIdentity(t *testing.T) {
	svc, pool := newService(t, ingest.Options{})
	file := []byte(realHeader + "2022-07-12 16:41:00,1,2,3,4,D\n")
	// A path-like name is just a label, and the same name under two vehicles is two uploads.
	const name = "../../etc/passwd"
	for _, v := range []string{"veh1", "veh2"} {
		upload(t, svc, v, name, file, 1<<20)
	}
	st, err := svc.Status(t.Context(), "veh1", name)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if st.FileName != name || st.VehicleID != "veh1" || st.Bytes != int64(len(file)) {
		t.Errorf("status = %+v, want file %q of veh1 with %d bytes", st, name, len(file))
	}
	finalize(t, svc, "veh1", name, 1, false)
	if _, err := svc.Status(t.Context(), "veh2", name); err != nil {
		t.Errorf("veh2's upload after finalizing veh1's: %v", err)
	}
	if rows := storedRows(t, pool, "veh2"); len(rows) != 0 {
		t.Errorf("veh2 has %d rows before its finalize, want 0", len(rows))
	}
}

func TestStatus(t *testing.T) {
	svc, _ := newService(t, ingest.Options{})
	put := func(index int, size int) {
		t.Helper()
		meta := ingest.ChunkMeta{VehicleID: "veh1", FileName: "f.csv", Index: index, Total: 5}
		if _, err := svc.PutChunk(t.Context(), meta, make([]byte, size)); err != nil {
			t.Fatalf("PutChunk(%d): %v", index, err)
		}
	}
	put(3, 100)
	put(0, 7)
	put(4, 0)

	tests := []struct {
		name      string
		vehicleID string
		fileName  string
		want      ingest.Status
		wantKind  apperr.Kind
	}{
		{"partial", "veh1", "f.csv", ingest.Status{VehicleID: "veh1", FileName: "f.csv", Total: 5, Received: []int{0, 3, 4}, Missing: []int{1, 2}, Bytes: 107}, 0},
		{"unknown file", "veh1", "g.csv", ingest.Status{}, apperr.KindNotFound},
		{"other vehicle", "veh2", "f.csv", ingest.Status{}, apperr.KindNotFound},
		{"invalid vehicle", "", "f.csv", ingest.Status{}, apperr.KindInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := svc.Status(t.Context(), tt.vehicleID, tt.fileName)
			if tt.wantKind != 0 {
				wantKind(t, err, tt.wantKind)
				return
			}
			if err != nil {
				t.Fatalf("Status: %v", err)
			}
			if got.VehicleID != tt.want.VehicleID || got.FileName != tt.want.FileName || got.Total != tt.want.Total ||
				!slices.Equal(got.Received, tt.want.Received) || !slices.Equal(got.Missing, tt.want.Missing) || got.Bytes != tt.want.Bytes {
				t.Errorf("Status = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestStatusEmptyListsAreNotNil(t *testing.T) {
	svc, _ := newService(t, ingest.Options{})
	upload(t, svc, "veh1", "f.csv", []byte("abc"), 10)
	st, err := svc.Status(t.Context(), "veh1", "f.csv")
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if st.Missing == nil || len(st.Missing) != 0 {
		t.Errorf("missing = %#v, want an empty, non-nil list (JSON [])", st.Missing)
	}
}

func TestPurge(t *testing.T) {
	svc, pool := newService(t, ingest.Options{})
	for _, f := range []string{"old.csv", "busy.csv", "fresh.csv"} {
		upload(t, svc, "veh1", f, []byte("some bytes"), 4)
	}
	_, err := pool.Exec(t.Context(), `UPDATE uploads SET updated_at = now() - interval '2 hours' WHERE file_name IN ('old.csv', 'busy.csv')`)
	if err != nil {
		t.Fatalf("age uploads: %v", err)
	}
	// An upload a finalize or a chunk holds is in use, not abandoned.
	busy, err := pool.Begin(t.Context())
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	defer busy.Rollback(context.WithoutCancel(t.Context()))
	if _, err := busy.Exec(t.Context(), `SELECT 1 FROM uploads WHERE file_name = 'busy.csv' FOR UPDATE`); err != nil {
		t.Fatalf("lock busy upload: %v", err)
	}

	if _, err := svc.Purge(t.Context(), 0); err == nil {
		t.Errorf("Purge(0) succeeded, want an error")
	}
	n, err := svc.Purge(t.Context(), time.Hour)
	if err != nil {
		t.Fatalf("Purge: %v", err)
	}
	if n != 1 {
		t.Errorf("purged %d uploads, want 1 (old.csv only)", n)
	}
	for _, tt := range []struct {
		file string
		gone bool
	}{{"old.csv", true}, {"busy.csv", false}, {"fresh.csv", false}} {
		_, err := svc.Status(t.Context(), "veh1", tt.file)
		if gotGone := isKind(err, apperr.KindNotFound); gotGone != tt.gone || (!gotGone && err != nil) {
			t.Errorf("after purge, Status(%s) = %v; want gone = %v", tt.file, err, tt.gone)
		}
	}
	var orphans int
	if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM upload_chunks WHERE file_name = 'old.csv'`).Scan(&orphans); err != nil {
		t.Fatalf("count chunks: %v", err)
	}
	if orphans != 0 {
		t.Errorf("%d chunks of the purged upload remain, want 0", orphans)
	}

	// Released, the old upload is abandoned like any other.
	if err := busy.Rollback(t.Context()); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	if n, err := svc.Purge(t.Context(), time.Hour); err != nil || n != 1 {
		t.Errorf("second Purge = %d, %v; want 1 (busy.csv), nil", n, err)
	}
}

func TestRunPurger(t *testing.T) {
	svc, pool := newService(t, ingest.Options{})
	upload(t, svc, "veh1", "old.csv", []byte("x"), 4)
	if _, err := pool.Exec(t.Context(), `UPDATE uploads SET updated_at = now() - interval '2 hours'`); err != nil {
		t.Fatalf("age upload: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		svc.RunPurger(ctx, 20*time.Millisecond, time.Hour)
	}()
	// Each tick deletes what has aged since the last: an upload made old after the start goes too.
	upload(t, svc, "veh1", "later.csv", []byte("x"), 4)
	if _, err := pool.Exec(t.Context(), `UPDATE uploads SET updated_at = now() - interval '2 hours' WHERE file_name = 'later.csv'`); err != nil {
		t.Fatalf("age upload: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, errOld := svc.Status(t.Context(), "veh1", "old.csv")
		_, errLater := svc.Status(t.Context(), "veh1", "later.csv")
		if isKind(errOld, apperr.KindNotFound) && isKind(errLater, apperr.KindNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("uploads not purged after 10s: old: %v, later: %v", errOld, errLater)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("RunPurger did not return after its context was cancelled")
	}
}

// fakeMetrics sums what the service reports.
type fakeMetrics struct {
	mu                                      sync.Mutex
	chunkBytes, rowsIngested, uploadsPurged int64
}

func (m *fakeMetrics) ChunkBytes(n int64)    { m.mu.Lock(); m.chunkBytes += n; m.mu.Unlock() }
func (m *fakeMetrics) RowsIngested(n int64)  { m.mu.Lock(); m.rowsIngested += n; m.mu.Unlock() }
func (m *fakeMetrics) UploadsPurged(n int64) { m.mu.Lock(); m.uploadsPurged += n; m.mu.Unlock() }

func TestMetrics(t *testing.T) {
	m := &fakeMetrics{}
	svc, pool := newService(t, ingest.Options{Metrics: m})
	file := genCSV(100, 1)
	total := upload(t, svc, "veh1", "f.csv", file, 1000)
	finalize(t, svc, "veh1", "f.csv", total, false)
	upload(t, svc, "veh1", "old.csv", []byte("abc"), 1000)
	if _, err := pool.Exec(t.Context(), `UPDATE uploads SET updated_at = now() - interval '2 hours'`); err != nil {
		t.Fatalf("age upload: %v", err)
	}
	if _, err := svc.Purge(t.Context(), time.Hour); err != nil {
		t.Fatalf("Purge: %v", err)
	}
	if m.chunkBytes != int64(len(file)+3) || m.rowsIngested != 100 || m.uploadsPurged != 1 {
		t.Errorf("metrics = %d chunk bytes, %d rows, %d purged; want %d, 100, 1", m.chunkBytes, m.rowsIngested, m.uploadsPurged, len(file)+3)
	}
}
