package uploader

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/vehicle-data/vehicle-data/gen/client"
)

// FileResult is the outcome of one file of UploadDir: Result on success, Err otherwise.
type FileResult struct {
	Path      string
	VehicleID string
	Result    *client.FinalizeResult
	Err       error
}

// UploadDir uploads every *.csv file directly in dir (not in subfolders), in name
// order. Each file's vehicle id is opts.VehicleID when set, else the file's name
// without ".csv". A failed file does not stop the others; the returned error says
// which failed, and each FileResult carries its own. Cancelling ctx interrupts the
// current file and skips the rest.
func UploadDir(ctx context.Context, dir string, opts Options) ([]FileResult, error) {
	paths, err := csvFiles(dir)
	if err != nil {
		return nil, err
	}
	results := make([]FileResult, 0, len(paths))
	var failed []string
	for _, path := range paths {
		fr := FileResult{Path: path, VehicleID: opts.VehicleID}
		if fr.VehicleID == "" {
			fr.VehicleID = vehicleIDFromPath(path)
		}
		fileOpts := opts
		fileOpts.VehicleID = fr.VehicleID
		fr.Result, fr.Err = UploadFile(ctx, path, fileOpts)
		results = append(results, fr)
		if ctx.Err() != nil {
			return results, fmt.Errorf("upload %s: interrupted at %s: %w", dir, filepath.Base(path), ctx.Err())
		}
		if fr.Err != nil {
			failed = append(failed, filepath.Base(path))
		}
	}
	if len(failed) > 0 {
		return results, fmt.Errorf("upload %s: %d of %d files failed: %s", dir, len(failed), len(paths), strings.Join(failed, ", "))
	}
	return results, nil
}

// csvFiles lists the regular *.csv files (any case of the extension) in dir, sorted.
func csvFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir) // sorted by name
	if err != nil {
		return nil, err
	}
	var paths []string
	for _, e := range entries {
		if !isCSV(e.Name()) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		info, err := os.Stat(path) // follows symlinks, unlike e.Type()
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // a dangling symlink
			}
			return nil, err
		}
		if info.Mode().IsRegular() {
			paths = append(paths, path)
		}
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no .csv files in %s", dir)
	}
	return paths, nil
}
