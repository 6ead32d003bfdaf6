package ingest_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vehicle-data/vehicle-data/internal/ingest"
)

// BenchmarkFinalize finalizes a 200,000-row file in the real layout (1 MiB chunks, about
// 8.5 MiB) and, in the same run and database, COPYs the same rows straight into vehicle_data,
// the floor for any bulk load. It reports both times and their ratio (finalize/copy); the goal
// is at most 1.3. Uploading the chunks is not timed. Sub-benchmarks: "empty" loads into an
// empty table; "history" into one already holding a million earlier rows of the vehicle.
//
//	go test -run '^$' -bench BenchmarkFinalize -benchtime 5x ./internal/ingest/
func BenchmarkFinalize(b *testing.B) {
	const rows = 200_000
	file := genCSV(rows, 1)
	copyFile := plainCopyFile(file, "bench")
	for _, history := range []int{0, 1_000_000} {
		name := "empty"
		if history > 0 {
			name = "history"
		}
		b.Run(name, func(b *testing.B) {
			svc, pool := newService(b, ingest.Options{})
			if history > 0 {
				storeHistory(b, pool, "bench", history)
			}
			benchmarkFinalize(b, svc, pool, file, copyFile, rows)
		})
	}
}

func benchmarkFinalize(b *testing.B, svc *ingest.Service, pool *pgxpool.Pool, file, copyFile []byte, rows int64) {
	const copySQL = `COPY vehicle_data (vehicle_id, "timestamp", speed, odometer, soc, elevation, shift_state)
		FROM STDIN (FORMAT csv, HEADER true)`
	var copyTime, finalizeTime time.Duration
	for b.Loop() {
		b.StopTimer()
		removeLoaded(b, pool)
		conn, err := pool.Acquire(b.Context())
		if err != nil {
			b.Fatalf("acquire: %v", err)
		}
		b.StartTimer()
		start := time.Now()
		tag, err := conn.Conn().PgConn().CopyFrom(b.Context(), bytes.NewReader(copyFile), copySQL)
		copyTime += time.Since(start)
		b.StopTimer()
		conn.Release()
		if err != nil || tag.RowsAffected() != rows {
			b.Fatalf("plain COPY = %v, %v; want %d rows", tag, err, rows)
		}

		removeLoaded(b, pool)
		total := upload(b, svc, "bench", "bench.csv", file, 1<<20)
		b.StartTimer()
		start = time.Now()
		res := finalize(b, svc, "bench", "bench.csv", total, false)
		finalizeTime += time.Since(start)
		if res.RowsInserted != rows {
			b.Fatalf("finalize inserted %d rows, want %d", res.RowsInserted, rows)
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(copyTime.Milliseconds())/n, "copy-ms/op")
	b.ReportMetric(float64(finalizeTime.Milliseconds())/n, "finalize-ms/op")
	b.ReportMetric(float64(finalizeTime)/float64(copyTime), "finalize/copy")
	b.ReportMetric(float64(rows)*n/finalizeTime.Seconds(), "rows/s")
}

// storeHistory stores n rows of vehicleID, one a second, ending just before the generated
// files begin.
func storeHistory(tb testing.TB, pool *pgxpool.Pool, vehicleID string, n int) {
	tb.Helper()
	_, err := pool.Exec(tb.Context(), `
		INSERT INTO samples (vehicle_key, "timestamp", speed, odometer, soc, elevation, shift_state)
		SELECT (SELECT vehicle_key_for($1)), timestamptz '2022-07-12 16:41:00Z' - g * interval '1 second', g % 120, 1000 + g / 100.0, 50, 10, 'D'
		FROM generate_series(1, $2::integer) g`, vehicleID, n)
	if err != nil {
		tb.Fatalf("store history: %v", err)
	}
	if _, err := pool.Exec(tb.Context(), `VACUUM ANALYZE vehicle_data`); err != nil {
		tb.Fatalf("vacuum: %v", err)
	}
}

// removeLoaded deletes what a previous load stored (every record from the generated files'
// start on) and any upload, so that each load starts from the same state.
func removeLoaded(tb testing.TB, pool *pgxpool.Pool) {
	tb.Helper()
	for _, sql := range []string{
		`TRUNCATE uploads, upload_chunks`,
		`DELETE FROM vehicle_data WHERE "timestamp" >= timestamptz '2022-07-12 16:41:00Z'`,
		`VACUUM vehicle_data`,
	} {
		if _, err := pool.Exec(tb.Context(), sql); err != nil {
			tb.Fatalf("reset the store: %s: %v", sql, err)
		}
	}
}

// plainCopyFile turns an upload file into what PostgreSQL's COPY reads for the same rows: a
// vehicle_id column first, and null as an empty cell rather than NULL.
func plainCopyFile(file []byte, vehicleID string) []byte {
	var out bytes.Buffer
	out.Grow(len(file) + len(file)/8)
	for i, line := range bytes.SplitAfter(file, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		if i == 0 {
			out.WriteString("vehicle_id,")
		} else {
			out.WriteString(vehicleID + ",")
		}
		out.Write(bytes.ReplaceAll(line, []byte(",NULL,"), []byte(",,")))
	}
	return out.Bytes()
}
