package bench

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseProcStatus(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    procMemory
		wantErr string
	}{
		{
			name: "both lines",
			in:   "Name:\tvehicle-data\nVmPeak:\t  900000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\nThreads:\t8\n",
			want: procMemory{RSS: 40 << 20, HWM: 50 << 20},
		},
		{name: "zombie without Vm lines", in: "Name:\tx\nState:\tZ (zombie)\n", wantErr: "no VmRSS/VmHWM"},
		{name: "only RSS", in: "VmRSS:\t 1 kB\n", wantErr: "no VmRSS/VmHWM"},
		{name: "other unit", in: "VmRSS:\t 1 MB\nVmHWM:\t 1 kB\n", wantErr: "unexpected VmRSS line"},
		{name: "not a number", in: "VmRSS:\t x kB\nVmHWM:\t 1 kB\n", wantErr: "unexpected VmRSS value"},
		{name: "negative", in: "VmRSS:\t 1 kB\nVmHWM:\t -1 kB\n", wantErr: "unexpected VmHWM value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProcStatus(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestMemSamplerPhases(t *testing.T) {
	s := startMemSampler(os.Getpid(), "idle")
	s.setPhase("work")
	// Hold a few MiB resident, touched, across at least one tick.
	buf := make([]byte, 16<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	time.Sleep(2 * sampleInterval)
	s.setPhase("idle")
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	mem, err := readProcMemory(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	work := s.peak("work")
	if work < 16<<20 {
		t.Errorf("got work peak %d bytes, want at least the 16 MiB held", work)
	}
	if work > mem.HWM {
		t.Errorf("got work peak %d bytes, want at most VmHWM %d", work, mem.HWM)
	}
	if got := s.peak("never"); got != 0 {
		t.Errorf("got peak %d for a phase never entered, want 0", got)
	}
	_ = buf[len(buf)-1]
}

func TestMedian(t *testing.T) {
	tests := []struct {
		name string
		in   []float64
		want float64
	}{
		{"none", nil, 0},
		{"one", []float64{3}, 3},
		{"odd, unsorted", []float64{5, 1, 3}, 3},
		{"even: mean of the middle two", []float64{4, 1, 3, 2}, 2.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.in)
			if got := median(in); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			if !slices.Equal(in, tt.in) {
				t.Errorf("median reordered its input: got %v, want %v", in, tt.in)
			}
		})
	}
}

func TestNewSeconds(t *testing.T) {
	got := newSeconds([]time.Duration{3 * time.Second, 1500 * time.Millisecond, 2 * time.Second})
	if got.Median != 2 || !slices.Equal(got.Runs, []float64{3, 1.5, 2}) {
		t.Errorf("got %+v, want median 2 and runs [3 1.5 2] in run order", got)
	}
}

func TestTarget(t *testing.T) {
	tests := []struct {
		name  string
		value float64
		op    string
		limit float64
		want  bool
	}{
		{"at most, equal", 1.3, "<=", 1.3, true},
		{"at most, over", 1.31, "<=", 1.3, false},
		{"below, equal", 64, "<", 64, false},
		{"below, under", 63.9, "<", 64, true},
		{"at least, equal", 100_000, ">=", 100_000, true},
		{"at least, under", 99_999, ">=", 100_000, false},
		{"unknown operator", 1, "==", 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := newTarget("x", tt.value, tt.op, tt.limit, "")
			if got.Met != tt.want {
				t.Errorf("got met %v for %v %s %v, want %v", got.Met, tt.value, tt.op, tt.limit, tt.want)
			}
		})
	}
}

func TestRSSTarget(t *testing.T) {
	// 100 MB is 95.37 MiB: 96 MiB misses it although it is under 100 MiB.
	got := rssTarget("peak", 96<<20, 100)
	if got.Met || got.Limit != 95.4 || got.Value != 96 {
		t.Errorf("got %+v, want 96 MiB against a limit of 95.4 MiB, missed", got)
	}
	if s, want := got.String(), "peak < 95.4 MiB (100 MB): 96 MiB, missed"; s != want {
		t.Errorf("got %q, want %q", s, want)
	}
	if got := rssTarget("peak", 30<<20, 64); !got.Met {
		t.Errorf("got %+v, want 30 MiB to meet 64 MB", got)
	}
}

func TestExportTargets(t *testing.T) {
	formats := []FormatResult{
		{Format: "csv", RatioToCopy: 1.2, PeakRSS: 20 << 20},
		{Format: "json", RatioToCopy: 2.5, PeakRSS: 20 << 20},
		{Format: "xlsx", RowsPerSecond: 90_000, PeakRSS: 100 << 20},
		{Format: "ndjson", Skipped: "not measured"},
	}
	var got []string
	for _, tg := range exportTargets(formats) {
		got = append(got, tg.Name+" "+tg.Verdict())
	}
	want := []string{
		`csv / \copy met`, "csv server peak RSS met",
		`json / \copy missed`, "json server peak RSS met",
		"xlsx server peak RSS met", "xlsx rows/s missed",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestDatabaseURLFor(t *testing.T) {
	tests := []struct {
		name, base, want, wantErr string
	}{
		{
			name: "unix socket in the query",
			base: "postgres://postgres@/vehicle_data?host=%2Ftmp%2Fs&port=5432&sslmode=disable",
			want: "postgres://postgres@/bench_x?host=%2Ftmp%2Fs&port=5432&sslmode=disable",
		},
		{
			name: "host and password",
			base: "postgresql://u:secret@db:5433/app",
			want: "postgresql://u:secret@db:5433/bench_x",
		},
		{name: "not a URL", base: "host=db dbname=app", wantErr: "postgres:// URL"},
		{name: "other scheme", base: "mysql://u:secret@db/app", wantErr: "mysql://u:xxxxx@db/app"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := databaseURLFor(tt.base, "bench_x")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "secret") {
					t.Fatalf("got error %v, want one containing %q without the password", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestServerEnv(t *testing.T) {
	got := serverEnv([]string{"PATH=/bin", "API_TOKENS=t", "GOMEMLIMIT=50MiB", "DATABASE_URL=x", "HOME=/root", "LC_ALL=C", "MAX_CHUNK_BYTES=1"})
	want := []string{"PATH=/bin", "GOMEMLIMIT=50MiB", "HOME=/root", "LC_ALL=C"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestOptionsWithDefaults(t *testing.T) {
	tests := []struct {
		name    string
		in      Options
		wantErr string
	}{
		{name: "zero value", in: Options{}},
		{name: "some formats", in: Options{Formats: []string{"xlsx", "csv"}}},
		{name: "unknown format", in: Options{Formats: []string{"csv", "parquet"}}, wantErr: `unknown export format "parquet"`},
		{name: "no format", in: Options{Formats: []string{}}, wantErr: "no export format"},
		{name: "negative rows", in: Options{Rows: -1}, wantErr: "rows must be at least 1"},
		{name: "negative runs", in: Options{Runs: -2}, wantErr: "runs must be at least 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.in.withDefaults()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Rows != DefaultRows || got.Runs != DefaultRuns || got.ServerBin != DefaultServerBin || got.Progress == nil {
				t.Errorf("got %+v, want the defaults filled in", got)
			}
			if tt.in.Formats == nil && !slices.Equal(got.Formats, Formats) {
				t.Errorf("got formats %q, want %q", got.Formats, Formats)
			}
		})
	}
}

func TestThousands(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{{0, "0"}, {999, "999"}, {1000, "1,000"}, {1_000_000, "1,000,000"}, {-12345, "-12,345"}}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := thousands(tt.in); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestQuoteLiteral(t *testing.T) {
	if got, want := quoteLiteral("/tmp/it's.csv"), "'/tmp/it''s.csv'"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
