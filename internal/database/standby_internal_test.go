package database

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/vehicle-data/vehicle-data/internal/apperr"
)

func TestParseLSN(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want LSN
		ok   bool
	}{
		{"0/3000148", 0x3000148, true},
		{"16/B374D848", 0x16_B374D848, true},
		{"FFFFFFFF/FFFFFFFF", ^LSN(0), true},
		{"0/0", 0, true},
		{"", 0, false},
		{"0/", 0, false},
		{"/1", 0, false},
		{"1", 0, false},
		{"0/+1", 0, false},
		{"0x1/2", 0, false},
		{"100000000/0", 0, false},
		{"0/1/2", 0, false},
		{"g/1", 0, false},
	} {
		got, err := ParseLSN(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseLSN(%q) = %v, %v; want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
		if tt.ok && got.String() != tt.in {
			t.Errorf("LSN(%q).String() = %q", tt.in, got.String())
		}
	}
}

// The lag is the age of the newest position of the primary that the standby has replayed.
func TestStandbyLag(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	type step struct {
		ms       int  // when the primary was asked, and (+5 ms) the standby
		primary  LSN  // 0: the primary did not answer
		replay   LSN  // the standby's replay position
		wantLag  int  // ms
		wantKnow bool // the lag is known (else a lower bound)
	}
	for _, tt := range []struct {
		name  string
		steps []step
	}{
		{"idle and caught up", []step{{0, 100, 100, 5, true}, {500, 100, 100, 5, true}, {1000, 100, 100, 5, true}}},
		{"writes replayed at once", []step{{0, 100, 100, 5, true}, {500, 200, 200, 5, true}, {1000, 300, 300, 5, true}}},
		{"standby starting behind", []step{{0, 100, 50, 5, false}, {500, 100, 80, 505, false}, {1000, 100, 100, 5, true}}},
		{"paused replay", []step{{0, 100, 100, 5, true}, {500, 200, 100, 505, true}, {1000, 300, 100, 1005, true}, {1500, 300, 300, 5, true}}},
		{"a little behind", []step{{0, 100, 100, 5, true}, {500, 200, 150, 505, true}, {1000, 300, 250, 505, true}}},
		{"primary unreachable, standby current", []step{{0, 100, 100, 5, true}, {500, 0, 100, 0, true}}},
		{"primary unreachable, standby behind", []step{{0, 100, 100, 5, true}, {500, 200, 100, 505, true}, {1000, 0, 100, 1005, true}}},
		{"restored primary", []step{{0, 500, 500, 5, true}, {500, 100, 100, 5, true}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := &Standby{}
			for i, st := range tt.steps {
				if st.primary != 0 {
					s.note(at(st.ms), st.primary)
				}
				lag, known := s.lag(st.replay, at(st.ms+5), st.primary != 0)
				if lag != time.Duration(st.wantLag)*time.Millisecond || known != st.wantKnow {
					t.Errorf("step %d: lag %v, known %v; want %dms, %v", i, lag, known, st.wantLag, st.wantKnow)
				}
			}
		})
	}
}

func TestStandbySamplesBounded(t *testing.T) {
	t.Parallel()
	s := &Standby{}
	t0 := time.Now()
	for i := range 3 * maxSamples {
		s.note(t0.Add(time.Duration(i)*time.Millisecond), LSN(100+i))
		if _, known := s.lag(50, t0.Add(time.Duration(i)*time.Millisecond), true); known {
			t.Fatal("a standby behind every sample has an unknown lag")
		}
	}
	if len(s.samples) != maxSamples {
		t.Errorf("%d samples kept, want %d", len(s.samples), maxSamples)
	}
}

func TestStandbyFallback(t *testing.T) {
	t.Parallel()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tt := range []struct {
		name     string
		ctx      context.Context
		err      error
		want     bool
		wantDown bool
	}{
		{"not found", context.Background(), apperr.NotFound("Not found."), true, false},
		{"invalid", context.Background(), apperr.InvalidField("cursor", "bad"), false, false},
		{"busy", context.Background(), apperr.Busy(time.Second, "busy"), false, false},
		{"statement timeout", context.Background(), &pgconn.PgError{Code: "57014"}, false, false},
		{"recovery conflict", context.Background(), &pgconn.PgError{Code: "40001"}, true, false},
		{"shutting down", context.Background(), &pgconn.PgError{Code: "57P01"}, true, true},
		{"connection lost", context.Background(), errors.New("unexpected EOF"), true, true},
		{"request gone", cancelled, errors.New("unexpected EOF"), false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := &Standby{log: slog.New(slog.DiscardHandler)}
			s.state.Store(&StandbyState{Usable: true})
			if got := s.Fallback(tt.ctx, tt.err); got != tt.want {
				t.Errorf("Fallback = %v, want %v", got, tt.want)
			}
			if down := !s.Usable(); down != tt.wantDown {
				t.Errorf("standby down after %v: %v, want %v", tt.err, down, tt.wantDown)
			}
		})
	}
	var none *Standby
	if none.Fallback(context.Background(), errors.New("x")) || none.Usable() || none.Degraded() != "" {
		t.Error("a nil Standby takes reads")
	}
}

func TestLagCheckInterval(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ maxLag, want time.Duration }{
		{time.Hour, 500 * time.Millisecond},
		{time.Second, 500 * time.Millisecond},
		{300 * time.Millisecond, 150 * time.Millisecond},
		{100 * time.Millisecond, 50 * time.Millisecond},
		{10 * time.Millisecond, 50 * time.Millisecond},
	} {
		if got := LagCheckInterval(tt.maxLag); got != tt.want {
			t.Errorf("LagCheckInterval(%v) = %v, want %v", tt.maxLag, got, tt.want)
		}
	}
}
