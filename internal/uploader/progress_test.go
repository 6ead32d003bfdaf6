package uploader

import (
	"bytes"
	"testing"
	"time"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

const mib = 1 << 20

// step is one event in a progress test and the output it must add.
type step struct {
	advance time.Duration // clock moves first
	add     int64         // then this many bytes are done; -1 finishes, -2 aborts
	want    string
}

const (
	finish = -1
	abort  = -2
)

func runProgress(t *testing.T, p *progress, clock *fakeClock, out *bytes.Buffer, steps []step) {
	t.Helper()
	for i, s := range steps {
		out.Reset()
		clock.t = clock.t.Add(s.advance)
		switch s.add {
		case finish:
			p.finish()
		case abort:
			p.abort()
		default:
			p.add(s.add)
		}
		if got := out.String(); got != s.want {
			t.Errorf("step %d: output %q, want %q", i, got, s.want)
		}
	}
}

func TestProgressTerminal(t *testing.T) {
	tests := []struct {
		name    string
		total   int64
		resumed int64
		start   string
		steps   []step
	}{
		{
			name:  "fresh upload",
			total: 10 * mib,
			start: "\rveh1.csv  0 B / 10.0 MiB    0%  0.0 MiB/s  ETA --",
			steps: []step{
				{time.Second, 2 * mib, "\rveh1.csv  2.0 MiB / 10.0 MiB   20%  2.0 MiB/s  ETA 4s"},
				{50 * time.Millisecond, mib, ""}, // too soon to redraw
				{950 * time.Millisecond, mib, "\rveh1.csv  4.0 MiB / 10.0 MiB   40%  2.0 MiB/s  ETA 3s"},
				{3 * time.Second, 6 * mib, "\rveh1.csv  10.0 MiB / 10.0 MiB  100%  2.0 MiB/s  ETA 0s"},
				{0, finish, "\rveh1.csv: 10.0 MiB sent in 5.0s (2.0 MiB/s)           \n"},
			},
		},
		{
			name:    "resumed upload counts only what this run sent in the rate",
			total:   4 * mib,
			resumed: 3 * mib,
			start:   "\rveh1.csv  3.0 MiB / 4.0 MiB   75%  0.0 MiB/s  ETA --",
			steps: []step{
				{2 * time.Second, 512 << 10, "\rveh1.csv  3.5 MiB / 4.0 MiB   87%  0.2 MiB/s  ETA 2s"},
				{0, abort, "\n"},
			},
		},
		{
			name:  "empty file",
			total: 0,
			start: "\rveh1.csv  0 B / 0 B    0%  0.0 MiB/s  ETA --",
			steps: []step{
				{time.Second, 0, "\rveh1.csv  0 B / 0 B    0%  0.0 MiB/s  ETA --"}, // nothing sent: no rate
				{0, finish, "\rveh1.csv: 0 B sent in 1.0s (0.0 MiB/s)      \n"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			clock := &fakeClock{t: time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)}
			p := newProgress(&out, true, "veh1.csv", tt.total, tt.resumed, clock.now)
			if got := out.String(); got != tt.start {
				t.Errorf("start: output %q, want %q", got, tt.start)
			}
			runProgress(t, p, clock, &out, tt.steps)
		})
	}
}

func TestProgressPlain(t *testing.T) {
	tests := []struct {
		name    string
		total   int64
		resumed int64
		start   string
		steps   []step
	}{
		{
			name:  "a line per tenth or per 5 seconds, none at 100%",
			total: 100 * mib,
			start: "veh1.csv: sending 100.0 MiB\n",
			steps: []step{
				{time.Second, 5 * mib, ""},
				{time.Second, 5 * mib, "veh1.csv: 10.0 MiB / 100.0 MiB (10%), 5.0 MiB/s, ETA 18s\n"},
				{time.Second, 9 * mib, ""},
				{4 * time.Second, mib, "veh1.csv: 20.0 MiB / 100.0 MiB (20%), 2.9 MiB/s, ETA 28s\n"},
				{time.Second, mib, ""},
				{5 * time.Second, mib, "veh1.csv: 22.0 MiB / 100.0 MiB (22%), 1.7 MiB/s, ETA 46s\n"},
				{time.Second, 78 * mib, ""},
				{time.Second, finish, "veh1.csv: 100.0 MiB sent in 15.0s (6.7 MiB/s)\n"},
			},
		},
		{
			name:    "resumed",
			total:   100 * mib,
			resumed: 60 * mib,
			start:   "veh1.csv: resuming, 40.0 MiB of 100.0 MiB left to send\n",
			steps: []step{
				{time.Second, 5 * mib, ""},
				{time.Second, 5 * mib, "veh1.csv: 70.0 MiB / 100.0 MiB (70%), 5.0 MiB/s, ETA 6s\n"},
				{time.Second, 0, ""},
				{0, abort, ""},
			},
		},
		{
			name:  "long upload",
			total: 2 << 30,
			start: "veh1.csv: sending 2.00 GiB\n",
			steps: []step{
				{90 * time.Second, 1 << 30, "veh1.csv: 1.00 GiB / 2.00 GiB (50%), 11.4 MiB/s, ETA 1m30s\n"},
				{30 * time.Second, 1 << 30, ""},
				{0, finish, "veh1.csv: 2.00 GiB sent in 2m0s (17.1 MiB/s)\n"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			clock := &fakeClock{t: time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)}
			p := newProgress(&out, false, "veh1.csv", tt.total, tt.resumed, clock.now)
			if got := out.String(); got != tt.start {
				t.Errorf("start: output %q, want %q", got, tt.start)
			}
			runProgress(t, p, clock, &out, tt.steps)
		})
	}
}

// Without a writer there is no progress, and using it is harmless.
func TestProgressNil(t *testing.T) {
	p := newProgress(nil, true, "veh1.csv", 10, 0, time.Now)
	if p != nil {
		t.Fatalf("newProgress(nil, ...) = %v, want nil", p)
	}
	p.add(5)
	p.finish()
	p.abort()
}

func TestHumanBytes(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0 B"},
		{1023, "1023 B"},
		{1024, "1.0 KiB"},
		{1536, "1.5 KiB"},
		{mib, "1.0 MiB"},
		{10*mib + mib/2, "10.5 MiB"},
		{5 << 30, "5.00 GiB"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := humanBytes(tt.n); got != tt.want {
				t.Errorf("humanBytes(%d) = %q, want %q", tt.n, got, tt.want)
			}
		})
	}
}
