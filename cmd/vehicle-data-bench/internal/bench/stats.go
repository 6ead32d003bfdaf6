package bench

import (
	"fmt"
	"slices"
	"time"
)

// Seconds is one timed step: the median and every timed run, in seconds.
type Seconds struct {
	Median float64   `json:"median"`
	Runs   []float64 `json:"runs"`
}

func newSeconds(ds []time.Duration) Seconds {
	s := Seconds{Runs: make([]float64, len(ds))}
	for i, d := range ds {
		s.Runs[i] = d.Seconds()
	}
	s.Median = median(s.Runs)
	return s
}

// median of xs (the mean of the middle two for an even count); 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

// ratio is a/b, or 0 when b is 0 (nothing measured).
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// Target is one of the goals, checked against a figure of the run. Missing a
// target is reported, not an error: the benchmark's job is the figures.
type Target struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Op    string  `json:"op"` // "<=", "<" or ">="; any other is never met
	Limit float64 `json:"limit"`
	Unit  string  `json:"unit,omitempty"`
	Note  string  `json:"note,omitempty"` // the limit as the issue states it, when converted
	Met   bool    `json:"met"`
}

func newTarget(name string, value float64, op string, limit float64, unit string) Target {
	t := Target{Name: name, Value: value, Op: op, Limit: limit, Unit: unit}
	switch op {
	case "<=":
		t.Met = value <= limit
	case "<":
		t.Met = value < limit
	case ">=":
		t.Met = value >= limit
	}
	return t
}

// Verdict is "met" or "missed".
func (t Target) Verdict() string {
	if t.Met {
		return "met"
	}
	return "missed"
}

// String reads like "finalize / \copy <= 1.3: 1.27, met".
func (t Target) String() string {
	note := ""
	if t.Note != "" {
		note = " (" + t.Note + ")"
	}
	return fmt.Sprintf("%s %s %s%s%s: %s%s, %s", t.Name, t.Op, trimFloat(t.Limit), t.Unit, note, trimFloat(t.Value), t.Unit, t.Verdict())
}

// rssTarget checks bytes against a limit in MB (10^6 bytes, the strict reading of the
// issue's "MB"), reported in MiB.
func rssTarget(name string, bytes int64, limitMB float64) Target {
	t := newTarget(name, round(mib(bytes), 1), "<", round(limitMB*1e6/(1<<20), 1), " MiB")
	t.Note = trimFloat(limitMB) + " MB"
	return t
}

func round(x float64, digits int) float64 {
	p := 1.0
	for range digits {
		p *= 10
	}
	return float64(int64(x*p+0.5)) / p
}

func trimFloat(x float64) string {
	if x >= 1000 {
		return fmt.Sprintf("%.0f", x)
	}
	return fmt.Sprintf("%.3g", x)
}
