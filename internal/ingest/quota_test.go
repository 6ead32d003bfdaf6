package ingest_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vehicle-data/vehicle-data/internal/apperr"
	"github.com/vehicle-data/vehicle-data/internal/database"
	"github.com/vehicle-data/vehicle-data/internal/ingest"
	"github.com/vehicle-data/vehicle-data/internal/testdb"
)

// wantStatus fails unless the upload holds exactly the chunks received, of bytes in all.
func wantStatus(t *testing.T, svc *ingest.Service, vehicleID, fileName string, received []int, bytes int64) {
	t.Helper()
	st, err := svc.Status(t.Context(), vehicleID, fileName)
	if err != nil {
		t.Fatalf("Status(%s): %v", fileName, err)
	}
	if !slices.Equal(st.Received, received) || st.Bytes != bytes {
		t.Errorf("Status(%s) = received %v, %d bytes; want %v, %d bytes", fileName, st.Received, st.Bytes, received, bytes)
	}
}

// storedBytes returns the bytes of every stored chunk, and fails unless each upload's
// bytes column (what the quotas read) equals the sum of its chunks.
func storedBytes(t *testing.T, pool *pgxpool.Pool) int64 {
	t.Helper()
	var chunks, uploads int64
	var mismatched []string
	err := pool.QueryRow(t.Context(), `
		SELECT (SELECT coalesce(sum(size), 0) FROM upload_chunks),
		       (SELECT coalesce(sum(bytes), 0) FROM uploads),
		       (SELECT coalesce(array_agg(u.file_name), '{}') FROM uploads u
		        WHERE u.bytes <> (SELECT coalesce(sum(c.size), 0) FROM upload_chunks c
		                          WHERE c.vehicle_id = u.vehicle_id AND c.file_name = u.file_name))`).
		Scan(&chunks, &uploads, &mismatched)
	if err != nil {
		t.Fatalf("sum stored bytes: %v", err)
	}
	if chunks != uploads || len(mismatched) > 0 {
		t.Errorf("chunks hold %d bytes, uploads.bytes says %d (uploads off: %v)", chunks, uploads, mismatched)
	}
	return chunks
}

func TestQuotaPerUpload(t *testing.T) {
	svc, pool := newService(t, ingest.Options{MaxChunkBytes: 1024, MaxUploadBytes: 2560})
	kib := bytes.Repeat([]byte("x"), 1024)
	put := func(index int, data []byte) error {
		_, err := svc.PutChunk(t.Context(), ingest.ChunkMeta{VehicleID: "v", FileName: "f.csv", Index: index, Total: 4}, data)
		return err
	}
	for i := range 2 {
		if err := put(i, kib); err != nil {
			t.Fatalf("PutChunk(%d): %v", i, err)
		}
	}

	// A third KiB makes 3072 bytes, over 2560: refused, and nothing of it is stored.
	wantKind(t, put(2, kib), apperr.KindTooLarge,
		`upload "f.csv" of vehicle "v" would hold 3072 bytes, more than the limit of 2560 bytes per upload (max-upload-bytes)`)
	wantStatus(t, svc, "v", "f.csv", []int{0, 1}, 2048)

	// Up to the limit exactly is fine.
	if err := put(2, kib[:512]); err != nil {
		t.Fatalf("PutChunk(2) of 512 bytes, reaching the limit: %v", err)
	}
	// At the limit, a re-sent chunk of the same size replaces the old one: only its new size
	// counts, not both.
	if err := put(0, bytes.Repeat([]byte("y"), 1024)); err != nil {
		t.Errorf("re-sending chunk 0 at the limit: %v", err)
	}
	// So does a smaller one, which frees room that a larger one may take again.
	if err := put(1, kib[:1000]); err != nil {
		t.Errorf("re-sending chunk 1 smaller: %v", err)
	}
	if err := put(1, kib[:1024]); err != nil {
		t.Errorf("re-sending chunk 1 back to its old size: %v", err)
	}
	// A replacement that grows the upload past the limit is refused; the old chunk stays.
	wantKind(t, put(2, kib[:513]), apperr.KindTooLarge, "2561 bytes", "limit of 2560 bytes")
	wantStatus(t, svc, "v", "f.csv", []int{0, 1, 2}, 2560)
	// An empty chunk adds nothing, so it fits even at the limit.
	if err := put(3, []byte{}); err != nil {
		t.Errorf("an empty chunk at the limit: %v", err)
	}
	wantStatus(t, svc, "v", "f.csv", []int{0, 1, 2, 3}, 2560)
	if got := storedBytes(t, pool); got != 2560 {
		t.Errorf("stored %d bytes, want 2560", got)
	}
}

func TestQuotaPending(t *testing.T) {
	const limit = 3072
	svc, pool := newService(t, ingest.Options{MaxChunkBytes: 2048, MaxUploadBytes: 2048, MaxPendingUploadBytes: limit})
	file := genCSV(40, 1) // more than one chunk, at most two
	if len(file) <= 1024 || len(file) > 2048 {
		t.Fatalf("the file is %d bytes, want 1025..2048", len(file))
	}
	total := upload(t, svc, "veh1", "a.csv", file, 1024)

	put := func(index int, data []byte) error {
		_, err := svc.PutChunk(t.Context(), ingest.ChunkMeta{VehicleID: "veh2", FileName: "b.csv", Index: index, Total: 2}, data)
		return err
	}
	// b's first chunk brings both uploads to the limit exactly; one more byte is too many.
	room := bytes.Repeat([]byte("x"), limit-len(file))
	if err := put(0, room); err != nil {
		t.Fatalf("PutChunk(b 0) up to the limit: %v", err)
	}
	wantKind(t, put(1, []byte("y")), apperr.KindInsufficientStorage,
		fmt.Sprintf(`chunk 1 of upload "b.csv" of vehicle "veh2" would bring all unfinalized uploads to %d bytes, more than the limit of %d bytes (max-pending-upload-bytes)`, limit+1, limit))
	wantStatus(t, svc, "veh2", "b.csv", []int{0}, int64(len(room)))
	// Re-sending a chunk of the same size at the limit is fine.
	if err := put(0, room); err != nil {
		t.Errorf("re-sending b's chunk 0 at the limit: %v", err)
	}
	if got := storedBytes(t, pool); got != limit {
		t.Errorf("stored %d bytes, want %d", got, limit)
	}

	// A finalized upload frees its bytes.
	finalize(t, svc, "veh1", "a.csv", total, false)
	if err := put(1, []byte("y")); err != nil {
		t.Errorf("PutChunk(b 1) after a.csv was finalized: %v", err)
	}
	wantStatus(t, svc, "veh2", "b.csv", []int{0, 1}, int64(len(room)+1))
}

// Chunks posted at once, through two services with pools of their own (two replicas on one
// database), never take the uploads past the limit, and exactly as many chunks as fit are
// accepted.
func TestQuotaConcurrent(t *testing.T) {
	const (
		posts     = 16
		chunkSize = 1000
	)
	url := testdb.NewURL(t)
	replica := func(opts ingest.Options) *ingest.Service {
		pool, err := database.OpenWith(t.Context(), url, func(c *pgxpool.Config) { c.MaxConns = posts / 2 })
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		return ingest.New(pool, opts)
	}
	check, err := database.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(check.Close)
	// Every commit of a chunk takes 50 ms: a deferred trigger sleeps in it, after the sums
	// were read and before the chunk is visible to others. Without the quota's lock, that
	// window lets nearly every post through; with it, the posts that fit commit in turn.
	_, err = check.Exec(t.Context(), `
		CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN PERFORM pg_sleep(0.05); RETURN NULL; END';
		CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT OR UPDATE ON upload_chunks
			DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit()`)
	if err != nil {
		t.Fatalf("slow down commits: %v", err)
	}

	tests := []struct {
		name    string
		opts    ingest.Options
		uploads int // the posts go round-robin to this many uploads
		fit     int
		kind    apperr.Kind
	}{
		// 10.5 chunks' worth for all: 10 fit, each post to an upload of its own.
		{"pending", ingest.Options{MaxChunkBytes: chunkSize, MaxUploadBytes: 1 << 20, MaxPendingUploadBytes: 10*chunkSize + chunkSize/2}, posts, 10, apperr.KindInsufficientStorage},
		// 5.5 chunks' worth per upload, all posts to one: 5 fit.
		{"per upload", ingest.Options{MaxChunkBytes: chunkSize, MaxUploadBytes: 5*chunkSize + chunkSize/2}, 1, 5, apperr.KindTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := check.Exec(t.Context(), `TRUNCATE uploads, upload_chunks`); err != nil {
				t.Fatal(err)
			}
			a, b := replica(tt.opts), replica(tt.opts)
			chunk := bytes.Repeat([]byte("x"), chunkSize)
			start := make(chan struct{})
			errs := make([]error, posts)
			var wg sync.WaitGroup
			for i := range posts {
				wg.Go(func() {
					svc := a
					if i%2 == 1 {
						svc = b
					}
					meta := ingest.ChunkMeta{VehicleID: "v", FileName: fmt.Sprintf("f%d.csv", i%tt.uploads), Index: i / tt.uploads, Total: posts}
					<-start
					_, errs[i] = svc.PutChunk(context.WithoutCancel(t.Context()), meta, chunk)
				})
			}
			close(start)
			wg.Wait()

			accepted := 0
			for i, err := range errs {
				switch e, ok := apperr.As(err); {
				case err == nil:
					accepted++
				case !ok || e.Kind != tt.kind:
					t.Errorf("post %d: %v, want accepted or kind %d", i, err, tt.kind)
				}
			}
			if accepted != tt.fit {
				t.Errorf("accepted %d chunks, want %d (as many as fit)", accepted, tt.fit)
			}
			if got := storedBytes(t, check); got != int64(tt.fit*chunkSize) {
				t.Errorf("stored %d bytes, want %d", got, tt.fit*chunkSize)
			}
		})
	}
}

// Migration 00005 fills in the bytes of uploads that were under way when it ran.
func TestQuotaMigrationBackfills(t *testing.T) {
	svc, pool := newService(t, ingest.Options{})
	hasColumn := func() bool {
		t.Helper()
		var ok bool
		err := pool.QueryRow(t.Context(), `SELECT EXISTS (SELECT FROM information_schema.columns WHERE table_name = 'uploads' AND column_name = 'bytes')`).Scan(&ok)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	for range 10 { // down to the migration before 00005, whatever came after it
		if !hasColumn() {
			break
		}
		if err := database.MigrateDown(t.Context(), pool); err != nil {
			t.Fatalf("migrate down: %v", err)
		}
	}
	pool.Reset() // the connections' prepared statements name a column that is gone
	_, err := pool.Exec(t.Context(), `
		INSERT INTO uploads (vehicle_id, file_name, total_chunks) VALUES ('v', 'a.csv', 3), ('v', 'b.csv', 3), ('v', 'empty.csv', 1);
		INSERT INTO upload_chunks (vehicle_id, file_name, chunk_index, data, size)
		VALUES ('v', 'a.csv', 0, 'abc', 3), ('v', 'a.csv', 2, 'de', 2), ('v', 'b.csv', 1, 'fghi', 4)`)
	if err != nil {
		t.Fatalf("insert uploads of before: %v", err)
	}
	if err := database.MigrateUp(t.Context(), pool); err != nil {
		t.Fatalf("migrate up: %v", err)
	}
	pool.Reset()
	if got := storedBytes(t, pool); got != 9 {
		t.Errorf("stored %d bytes, want 9", got)
	}
	wantStatus(t, svc, "v", "a.csv", []int{0, 2}, 5)
}
