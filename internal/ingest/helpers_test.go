package ingest_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vehicle-data/vehicle-data/internal/apperr"
	"github.com/vehicle-data/vehicle-data/internal/ingest"
	"github.com/vehicle-data/vehicle-data/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// newService returns a Service on a fresh database, and the database's pool for checks.
func newService(t testing.TB, opts ingest.Options) (*ingest.Service, *pgxpool.Pool) {
	t.Helper()
	pool := testdb.New(t)
	return ingest.New(pool, opts), pool
}

// split cuts data into chunks of size bytes (the last may be shorter); empty data is one
// empty chunk.
func split(data []byte, size int) [][]byte {
	if len(data) == 0 {
		return [][]byte{{}}
	}
	var chunks [][]byte
	for len(data) > size {
		chunks = append(chunks, data[:size])
		data = data[size:]
	}
	return append(chunks, data)
}

// upload stores data as chunks of chunkSize bytes, in order, and returns the chunk count.
func upload(t testing.TB, svc *ingest.Service, vehicleID, fileName string, data []byte, chunkSize int) int {
	t.Helper()
	chunks := split(data, chunkSize)
	for i, c := range chunks {
		meta := ingest.ChunkMeta{VehicleID: vehicleID, FileName: fileName, Index: i, Total: len(chunks)}
		if _, err := svc.PutChunk(t.Context(), meta, c); err != nil {
			t.Fatalf("PutChunk(%d of %d): %v", i, len(chunks), err)
		}
	}
	return len(chunks)
}

// rowWriter writes rows in the layout of the dashboard's files, one telemetry sample per
// second or so, starting at a fixed instant so that runs are reproducible.
type rowWriter struct {
	r   *rand.Rand
	ts  time.Time
	odo float64
	// dup, when set, writes the first row twice: a file with a duplicate, which takes the
	// finalize's staged path.
	dup bool
	n   int
}

const realHeader = "timestamp,speed,odometer,soc,elevation,shift_state\n"

func newRowWriter(seed uint64) *rowWriter {
	return &rowWriter{
		r:   rand.New(rand.NewPCG(seed, 1)),
		ts:  time.Date(2022, 7, 12, 16, 41, 0, 966e6, time.UTC),
		odo: 47676.2,
	}
}

// row appends one row such as "2022-07-12 16:41:00.966,37,47676.2,73,4,D"; parked rows
// have null speed and shift state, as in the real data.
func (w *rowWriter) row(b []byte) []byte {
	start := len(b)
	b = w.sample(b)
	if w.n++; w.dup && w.n == 1 {
		b = append(b, b[start:]...)
	}
	return b
}

func (w *rowWriter) sample(b []byte) []byte {
	w.ts = w.ts.Add(time.Duration(900+w.r.IntN(200)) * time.Millisecond)
	w.odo += w.r.Float64() / 50
	b = w.ts.AppendFormat(b, "2006-01-02 15:04:05.000")
	if w.r.IntN(10) == 0 {
		return fmt.Appendf(b, ",NULL,%.1f,%d,%d,\n", w.odo, 20+w.r.IntN(80), w.r.IntN(300))
	}
	return fmt.Appendf(b, ",%d,%.1f,%d,%d,%c\n", w.r.IntN(120), w.odo, 20+w.r.IntN(80), w.r.IntN(300), "DRND"[w.r.IntN(4)])
}

// genCSV returns a file of n generated rows with the real header.
func genCSV(n int, seed uint64) []byte {
	w := newRowWriter(seed)
	b := make([]byte, 0, 45*(n+1))
	b = append(b, realHeader...)
	for range n {
		b = w.row(b)
	}
	return b
}

// uploadGenerated stores n generated rows as chunks of chunkSize bytes without ever holding
// the whole file, so memory measurements see the service's memory only. It returns the
// chunk count.
func uploadGenerated(t testing.TB, svc *ingest.Service, vehicleID, fileName string, n int, chunkSize int) int {
	t.Helper()
	return uploadGeneratedDup(t, svc, vehicleID, fileName, n, chunkSize, false)
}

// uploadGeneratedDup is uploadGenerated, with the first row twice if dup.
func uploadGeneratedDup(t testing.TB, svc *ingest.Service, vehicleID, fileName string, n int, chunkSize int, dup bool) int {
	t.Helper()
	// Generation is deterministic: a first pass measures the file, since every chunk must
	// carry the total.
	size := len(realHeader)
	w := newRowWriter(7)
	w.dup = dup
	var line []byte
	for range n {
		line = w.row(line[:0])
		size += len(line)
	}
	total := (size + chunkSize - 1) / chunkSize

	w = newRowWriter(7)
	w.dup = dup
	buf := append(make([]byte, 0, chunkSize+100), realHeader...)
	index := 0
	flush := func(b []byte) {
		meta := ingest.ChunkMeta{VehicleID: vehicleID, FileName: fileName, Index: index, Total: total}
		if _, err := svc.PutChunk(t.Context(), meta, b); err != nil {
			t.Fatalf("PutChunk(%d of %d): %v", index, total, err)
		}
		index++
	}
	for range n {
		buf = w.row(buf)
		if len(buf) >= chunkSize {
			flush(buf[:chunkSize])
			buf = append(buf[:0], buf[chunkSize:]...)
		}
	}
	if len(buf) > 0 {
		flush(buf)
	}
	if index != total {
		t.Fatalf("uploaded %d chunks, announced %d", index, total)
	}
	return total
}

// wantKind fails unless err is an apperr.Error of kind k whose detail contains each of subs.
func wantKind(t *testing.T, err error, k apperr.Kind, subs ...string) {
	t.Helper()
	e, ok := apperr.As(err)
	if !ok {
		t.Fatalf("error = %v (%T), want apperr kind %d", err, err, k)
	}
	if e.Kind != k {
		t.Fatalf("error kind = %d (%v), want %d", e.Kind, e, k)
	}
	for _, s := range subs {
		if !strings.Contains(e.Detail, s) {
			t.Errorf("error detail = %q, want it to contain %q", e.Detail, s)
		}
	}
}

// storedRow is a vehicle_data row as text, for compact comparisons.
type storedRow struct {
	Timestamp  string // RFC 3339 in UTC, microseconds
	Speed      string // "null" or the number
	Odometer   float64
	SOC        int16
	Elevation  float64
	ShiftState string // "null" or the value
}

func storedRows(t testing.TB, pool *pgxpool.Pool, vehicleID string) []storedRow {
	t.Helper()
	rows, err := pool.Query(t.Context(), `
		SELECT to_char("timestamp" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
		       coalesce(speed::text, 'null'), odometer, soc, elevation, coalesce(shift_state, 'null')
		FROM vehicle_data WHERE vehicle_id = $1 ORDER BY "timestamp"`, vehicleID)
	if err != nil {
		t.Fatalf("read vehicle_data: %v", err)
	}
	defer rows.Close()
	var out []storedRow
	for rows.Next() {
		var r storedRow
		if err := rows.Scan(&r.Timestamp, &r.Speed, &r.Odometer, &r.SOC, &r.Elevation, &r.ShiftState); err != nil {
			t.Fatalf("scan vehicle_data: %v", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read vehicle_data: %v", err)
	}
	return out
}

// countRecords returns the rows of vehicle_data and of vehicles (all vehicles).
func countRecords(t testing.TB, pool *pgxpool.Pool) (records, vehicles int64) {
	t.Helper()
	err := pool.QueryRow(t.Context(), `SELECT (SELECT count(*) FROM vehicle_data), (SELECT count(*) FROM vehicles)`).
		Scan(&records, &vehicles)
	if err != nil {
		t.Fatalf("count records: %v", err)
	}
	return records, vehicles
}

// wantNothingInserted fails if any record or vehicle is stored.
func wantNothingInserted(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	if r, v := countRecords(t, pool); r != 0 || v != 0 {
		t.Errorf("stored %d records of %d vehicles, want none", r, v)
	}
}

// wantChunksKept fails unless the upload still holds all total chunks.
func wantChunksKept(t *testing.T, svc *ingest.Service, vehicleID, fileName string, total int) {
	t.Helper()
	st, err := svc.Status(t.Context(), vehicleID, fileName)
	if err != nil {
		t.Fatalf("Status after the failed finalize: %v", err)
	}
	if len(st.Received) != total || len(st.Missing) != 0 {
		t.Errorf("after the failed finalize the upload holds %d chunks (missing %v), want all %d", len(st.Received), st.Missing, total)
	}
}

// finalize finalizes a whole upload and fails the test on error.
func finalize(t testing.TB, svc *ingest.Service, vehicleID, fileName string, total int, skipInvalid bool) ingest.Result {
	t.Helper()
	res, err := svc.Finalize(t.Context(), ingest.FinalizeRequest{VehicleID: vehicleID, FileName: fileName, Total: total, SkipInvalid: skipInvalid})
	if err != nil {
		t.Fatalf("Finalize(%s, %s): %v", vehicleID, fileName, err)
	}
	return res
}

func ptr[T any](v T) *T { return &v }

// isKind reports whether err's chain holds an apperr.Error of kind k.
func isKind(err error, k apperr.Kind) bool {
	e, ok := apperr.As(err)
	return ok && e.Kind == k
}
