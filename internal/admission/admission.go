// Package admission caps each kind of work the server does at once. A request that finds
// its kind full waits a bounded time (or none) and is then refused with a 503 naming the
// limit and saying when to retry: never an unbounded queue, never a hang.
package admission

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/vehicle-data/vehicle-data/internal/apperr"
)

// Gate admits work up to a capacity (requests, or bytes for chunk uploads).
type Gate struct {
	name       string // what is limited, for the 503: "concurrent exports"
	setting    string // the flag that sets it: "max-exports"
	capacity   int64
	wait       time.Duration // how long a request may wait for room; 0: not at all
	retryAfter time.Duration
	sem        *semaphore.Weighted

	inUse   atomic.Int64
	refused atomic.Int64
}

// NewGate returns a gate of capacity units. wait is how long Acquire waits for room before
// refusing; retryAfter is the Retry-After of a refusal.
func NewGate(name, setting string, capacity int64, wait, retryAfter time.Duration) *Gate {
	if capacity < 1 {
		capacity = 1
	}
	return &Gate{name: name, setting: setting, capacity: capacity, wait: wait, retryAfter: retryAfter, sem: semaphore.NewWeighted(capacity)}
}

// Acquire takes n units (at most the capacity: a request larger than the whole gate waits
// for all of it). It returns a release function, or an apperr Busy error when no room
// came within the gate's wait, or ctx's error when the caller went away first.
func (g *Gate) Acquire(ctx context.Context, n int64) (release func(), err error) {
	n = min(max(n, 1), g.capacity)
	if !g.sem.TryAcquire(n) {
		if g.wait <= 0 {
			return nil, g.busy()
		}
		wctx, cancel := context.WithTimeout(ctx, g.wait)
		err := g.sem.Acquire(wctx, n)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, g.busy()
		}
	}
	g.inUse.Add(n)
	var once atomic.Bool
	return func() {
		if once.CompareAndSwap(false, true) {
			g.inUse.Add(-n)
			g.sem.Release(n)
		}
	}, nil
}

func (g *Gate) busy() error {
	g.refused.Add(1)
	how := "at once"
	if g.wait > 0 {
		how = fmt.Sprintf("at once, and none finished within %s", g.wait)
	}
	return apperr.Busy(g.retryAfter, "the server is at its limit of %d %s (%s) %s; retry after %s",
		g.capacity, g.name, g.setting, how, retryText(g.retryAfter))
}

func retryText(d time.Duration) string {
	s := int(d.Round(time.Second) / time.Second)
	if s <= 1 {
		return "1 second"
	}
	return fmt.Sprintf("%d seconds", s)
}

// Stats are a gate's figures for metrics.
type Stats struct {
	Name     string
	Capacity int64
	InUse    int64
	Refused  int64
}

// Stats returns the gate's current figures.
func (g *Gate) Stats() Stats {
	return Stats{Name: g.setting, Capacity: g.capacity, InUse: g.inUse.Load(), Refused: g.refused.Load()}
}
