//go:build benchsmoke

// TestRunSmall builds the server and runs both benchmarks end to end, so it stays out of
// `make test`: `make bench-smoke` runs it (go test -tags benchsmoke).

package bench

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// buildServer builds cmd/vehicle-data into a temporary folder: the benchmark measures the
// real binary.
func buildServer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "vehicle-data")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/vehicle-data/vehicle-data/cmd/vehicle-data")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the server: %v\n%s", err, out)
	}
	return bin
}

// TestRunSmall runs both benchmarks end to end on a small file, against the embedded
// PostgreSQL: every step must succeed and every figure must be filled in.
func TestRunSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and the server: not in -short")
	}
	bin := buildServer(t)
	const rows = 3000
	var progress bytes.Buffer
	opts := Options{Rows: rows, Runs: 2, ServerBin: bin, Progress: &progress}

	t.Run("ingest", func(t *testing.T) {
		rep, err := RunIngest(t.Context(), opts)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Upload.Runs) != 2 || len(rep.Finalize.Runs) != 2 || len(rep.Copy.Runs) != 2 {
			t.Errorf("got %d upload, %d finalize, %d copy runs, want 2 each (warm-up excluded)", len(rep.Upload.Runs), len(rep.Finalize.Runs), len(rep.Copy.Runs))
		}
		if rep.Finalize.Median <= 0 || rep.Copy.Median <= 0 || rep.FinalizeToCopy <= 0 {
			t.Errorf("got finalize %v s, copy %v s, ratio %v, want all positive", rep.Finalize.Median, rep.Copy.Median, rep.FinalizeToCopy)
		}
		r := rep.ServerRSS
		if r.Idle <= 0 || r.Upload <= 0 || r.Finalize <= 0 || r.Peak < max(r.Idle, r.Upload, r.Finalize) {
			t.Errorf("got RSS %+v, want positive samples at most the peak", r)
		}
		if len(rep.Targets) != 2 {
			t.Errorf("got %d targets, want 2", len(rep.Targets))
		}
		dir := tempDirFrom(t, progress.String())
		if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("got %v for the temporary folder %s, want it removed", err, dir)
		}
		var out bytes.Buffer
		if err := WriteIngest(&out, rep); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"finalize / \\copy", "psql \\copy", "VmHWM"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("got table\n%s\nwant it to mention %q", out.String(), want)
			}
		}
	})

	t.Run("export", func(t *testing.T) {
		opts := opts
		opts.Formats = []string{"csv", "xlsx"}
		rep, err := RunExport(t.Context(), opts)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Copy.Runs) != 4 {
			t.Errorf("got %d \\copy runs, want one per timed export run: 4", len(rep.Copy.Runs))
		}
		if len(rep.Formats) != 2 {
			t.Fatalf("got %d formats, want 2", len(rep.Formats))
		}
		for _, fr := range rep.Formats {
			if fr.Bytes <= 0 || fr.RowsPerSecond <= 0 || fr.RatioToCopy <= 0 || fr.IdleRSS <= 0 || fr.PeakRSS < fr.ExportRSS {
				t.Errorf("got %+v, want every figure filled in", fr)
			}
		}
		// The export's CSV differs from \copy's only in its timestamps' spelling: a
		// size far off means the export is not of the same rows.
		csv := rep.Formats[0]
		if lo, hi := rep.CopyBytes*9/10, rep.CopyBytes*11/10; csv.Bytes < lo || csv.Bytes > hi {
			t.Errorf("got a CSV export of %d bytes, want about \\copy's %d", csv.Bytes, rep.CopyBytes)
		}
		if len(rep.Targets) != 4 {
			t.Errorf("got %d targets, want 4 (csv ratio and RSS, xlsx RSS and rate)", len(rep.Targets))
		}
	})
}

// TestReplicasSmall runs the replicas benchmark on a small fleet through one and two replicas
// behind nginx: every run must be reported, with CPU time for the database and the replicas, and
// no upload of the ingest mix may fail.
func TestReplicasSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL, nginx and the server: not in -short")
	}
	if _, err := findNginx(); err != nil {
		t.Fatal(err)
	}
	bin := buildServer(t)
	var out, progress bytes.Buffer
	opts := ReplicaOptions{
		ListOptions: ListOptions{Options: Options{Rows: 5000, ServerBin: bin, Progress: &progress}, Vehicles: 2, Duration: 2 * time.Second},
		Replicas:    []int{1, 2}, ListConns: 4, IngestWorkers: 2,
	}
	if err := RunReplicas(t.Context(), opts, &out); err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	report := out.String()
	for _, want := range []string{"list SQL, pgbench", "where the time goes", "one upload at a time", "list, " + splitSettings(2)} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	for _, n := range []string{"1", "2"} {
		for _, mix := range []string{"list", "ingest 60 rows", "ingest 600 rows", "ingest 3600 rows", "list + ingest 600 rows"} {
			// Each run twice: the throughput table and the CPU table.
			re := regexp.MustCompile(`(?m)^\s*` + n + `\s+` + regexp.QuoteMeta(mix) + `\s+[0-9]`)
			if got := len(re.FindAllString(report, -1)); got != 2 {
				t.Errorf("%s replica(s), %s: %d lines, want 2:\n%s", n, mix, got, report)
			}
		}
	}
	if strings.Contains(progress.String(), "first failure") {
		t.Errorf("an upload of the ingest mix failed:\n%s", progress.String())
	}
}

// tempDirFrom finds the temporary folder in the progress lines.
func tempDirFrom(t *testing.T, progress string) string {
	t.Helper()
	for line := range strings.Lines(progress) {
		if dir, ok := strings.CutPrefix(strings.TrimSpace(line), "temporary folder "); ok {
			return dir
		}
	}
	t.Fatalf("no temporary folder in the progress lines:\n%s", progress)
	return ""
}
