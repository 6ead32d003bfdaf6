package sample

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"
)

// idStream separates the random stream of vehicle ids from the telemetry
// streams of the same seed.
const idStream = 0x76656869636c6573 // "vehicles"

// VehicleIDs returns n distinct UUID-like (version 4) ids derived from seed.
func VehicleIDs(n int, seed int64) []string {
	rng := rand.New(rand.NewPCG(uint64(seed), idStream))
	ids := make([]string, 0, max(n, 0))
	seen := make(map[string]bool, max(n, 0))
	for len(ids) < n {
		id := uuid(rng.Uint64(), rng.Uint64())
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids
}

// uuid formats 128 random bits as a version 4, variant 1 UUID.
func uuid(hi, lo uint64) string {
	hi = hi&^0xf000 | 0x4000     // version 4
	lo = lo&^(0xc<<60) | 0x8<<60 // variant 10xx
	const hex = "0123456789abcdef"
	var b [36]byte
	pos := 0
	for _, v := range [2]uint64{hi, lo} {
		for shift := 60; shift >= 0; shift -= 4 {
			if pos == 8 || pos == 13 || pos == 18 || pos == 23 {
				b[pos] = '-'
				pos++
			}
			b[pos] = hex[v>>uint(shift)&0xf]
			pos++
		}
	}
	return string(b[:])
}

// WriteDir writes one file of rows rows for each of vehicles vehicles into
// dir (created if missing), named <vehicle_id>.csv like the original data
// set, and returns their paths. Ids, start times and data follow from seed.
func WriteDir(dir string, vehicles, rows int, seed int64) ([]string, error) {
	if vehicles < 0 {
		return nil, fmt.Errorf("sample: vehicles %d is negative", vehicles)
	}
	if rows < 0 {
		return nil, fmt.Errorf("sample: rows %d is negative", rows)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("sample: %w", err)
	}
	// Vehicles start within the first hour and a half, not all at once.
	offsets := rand.New(rand.NewPCG(uint64(seed), idStream+1))
	paths := make([]string, 0, vehicles)
	for _, id := range VehicleIDs(vehicles, seed) {
		path := filepath.Join(dir, id+".csv")
		start := DefaultStart.Add(time.Duration(offsets.IntN(90*60_000)) * time.Millisecond)
		if err := writeFile(path, Options{VehicleID: id, Rows: rows, Seed: seed, Start: start}); err != nil {
			return paths, err
		}
		paths = append(paths, path)
	}
	return paths, nil
}

// writeFile writes one sample file, removing it when it could not be
// written whole.
func writeFile(path string, opts Options) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("sample: %w", err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("sample: %w", cerr))
		}
		if err != nil {
			_ = os.Remove(path)
		}
	}()
	return Write(f, opts)
}
