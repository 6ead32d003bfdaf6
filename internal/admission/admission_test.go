package admission

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vehicle-data/vehicle-data/internal/apperr"
)

func TestGate(t *testing.T) {
	t.Run("refuses at once when full and wait is zero", func(t *testing.T) {
		g := NewGate("concurrent exports", "max-exports", 2, 0, 5*time.Second)
		r1, err := g.Acquire(t.Context(), 1)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := g.Acquire(t.Context(), 1)
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		_, err = g.Acquire(t.Context(), 1)
		if d := time.Since(t0); d > 50*time.Millisecond {
			t.Errorf("refusal took %v", d)
		}
		e, ok := apperr.As(err)
		if !ok || e.Kind != apperr.KindUnavailable || e.RetryAfter != 5*time.Second || !strings.Contains(e.Detail, "max-exports") {
			t.Fatalf("got %#v, want a 503 naming max-exports with Retry-After 5s", err)
		}
		if st := g.Stats(); st.InUse != 2 || st.Refused != 1 || st.Capacity != 2 {
			t.Errorf("stats %+v", st)
		}
		r1()
		r1() // a second release is harmless
		if _, err := g.Acquire(t.Context(), 1); err != nil {
			t.Errorf("after a release: %v", err)
		}
		r2()
		if st := g.Stats(); st.InUse != 1 {
			t.Errorf("in use %d after releases, want 1", st.InUse)
		}
	})
	t.Run("waits up to wait for room", func(t *testing.T) {
		g := NewGate("bytes of upload chunks in flight", "chunk-bytes-in-flight", 100, 300*time.Millisecond, time.Second)
		r, err := g.Acquire(t.Context(), 80)
		if err != nil {
			t.Fatal(err)
		}
		go func() { time.Sleep(50 * time.Millisecond); r() }()
		if _, err := g.Acquire(t.Context(), 50); err != nil {
			t.Errorf("room came within the wait: %v", err)
		}
		t0 := time.Now()
		_, err = g.Acquire(t.Context(), 60)
		if d := time.Since(t0); d < 250*time.Millisecond || d > 2*time.Second {
			t.Errorf("refused after %v, want about 300ms", d)
		}
		if e, ok := apperr.As(err); !ok || e.Kind != apperr.KindUnavailable {
			t.Errorf("got %v, want busy", err)
		}
	})
	t.Run("more than the capacity waits for all of it", func(t *testing.T) {
		g := NewGate("x", "x", 10, 0, time.Second)
		r, err := g.Acquire(t.Context(), 1000)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := g.Acquire(t.Context(), 1); err == nil {
			t.Error("admitted beside a request that took the whole gate")
		}
		r()
	})
	t.Run("a caller that leaves gets its own error", func(t *testing.T) {
		g := NewGate("x", "x", 1, time.Minute, time.Second)
		r, _ := g.Acquire(t.Context(), 1)
		defer r()
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := g.Acquire(ctx, 1); err != context.Canceled {
			t.Errorf("got %v, want context.Canceled", err)
		}
	})
}
