package export

import (
	"encoding/csv"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestAppendFloatMatchesEncodingJSON(t *testing.T) {
	check := func(t *testing.T, f float64) {
		t.Helper()
		if !isFinite(f) { // the next float after MaxFloat64
			return
		}
		want, err := json.Marshal(f)
		if err != nil {
			t.Fatalf("json.Marshal(%v): %v", f, err)
		}
		if got := appendFloat(nil, f); string(got) != string(want) {
			t.Errorf("appendFloat(%b) = %s, want %s", f, got, want)
		}
	}
	t.Run("edges", func(t *testing.T) {
		for _, f := range edgeFloats {
			check(t, f)
			check(t, -f)
			check(t, math.Nextafter(f, math.Inf(1)))
			check(t, math.Nextafter(f, math.Inf(-1)))
		}
	})
	t.Run("whole numbers", func(t *testing.T) { // appendFloat's fast path and its edges
		for _, f := range []float64{0, math.Copysign(0, -1), 1, 1e15 - 1, 1e15, 1e15 + 1, 1 << 53, 1<<53 + 2, 1e20, 1e21} {
			check(t, f)
			check(t, -f)
		}
		rng := rand.New(rand.NewPCG(3, 4))
		for range 100_000 {
			f := math.Trunc(randomFloat(rng))
			check(t, f)
			check(t, float64(rng.Int64N(2_000_000)-1_000_000))
		}
	})
	t.Run("random", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		for range 200_000 {
			check(t, randomFloat(rng))
		}
	})
}

func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	check := func(t *testing.T, s string) {
		t.Helper()
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("json.Marshal(%q): %v", s, err)
		}
		if got := appendJSONString(nil, s); string(got) != string(want) {
			t.Errorf("appendJSONString(%q) = %s, want %s", s, got, want)
		}
	}
	t.Run("every byte and piece", func(t *testing.T) {
		check(t, "")
		for c := range 256 {
			check(t, string([]byte{byte(c)}))
			check(t, "x"+string([]byte{byte(c)})+"y")
		}
		for _, p := range stringPieces {
			check(t, p)
			check(t, "ab"+p+"cd")
		}
	})
	t.Run("random", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(5, 6))
		for range 100_000 {
			check(t, randomString(rng))
		}
	})
}

func TestAppendCSVField(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"D", "D"},
		{"06ab31a9-b35d-4e47-8e44-9c35feb1bfae", "06ab31a9-b35d-4e47-8e44-9c35feb1bfae"},
		{"in side", "in side"},
		{"日本", "日本"},
		{"a,b", `"a,b"`},
		{`say "hi"`, `"say ""hi"""`},
		{`"`, `""""`},
		{"line\nbreak", "\"line\nbreak\""},
		{"cr\rlf", "\"cr\rlf\""},
		{" lead", `" lead"`},
		{"trail ", `"trail "`},
		{"\ttab", "\"\ttab\""},
		{"", `""`},
		{"NULL", `"NULL"`},
		{"null", `"null"`},
		{"nUlL", `"nUlL"`},
		{"NULLS", "NULLS"},
		{`\.`, `"\."`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := string(appendCSVField(nil, tt.in)); got != tt.want {
				t.Errorf("appendCSVField(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

// A CSV reader must get every string back; a CRLF inside quotes comes back
// as LF, as RFC 4180 readers (ours included) store it.
func TestAppendCSVFieldRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for range 20_000 {
		a, b := randomString(rng), randomString(rng)
		line := appendCSVField(nil, a)
		line = append(line, ',')
		line = appendCSVField(line, b)
		line = append(line, '\n')
		got, err := csv.NewReader(strings.NewReader(string(line))).Read()
		if err != nil {
			t.Fatalf("reading %q: %v", line, err)
		}
		want := []string{strings.ReplaceAll(a, "\r\n", "\n"), strings.ReplaceAll(b, "\r\n", "\n")}
		if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
			t.Fatalf("read %q back as %q, want %q", line, got, want)
		}
	}
}
