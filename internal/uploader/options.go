package uploader

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vehicle-data/vehicle-data/internal/records"
)

// Defaults applied to zero-valued Options fields.
const (
	DefaultChunkSize      int64 = 1 << 20 // what the dashboard uses
	DefaultParallel             = 4
	DefaultRetries              = 5
	DefaultRetryBaseDelay       = 500 * time.Millisecond
)

// Options configures an upload. The zero value of every field but Server means its default.
type Options struct {
	// Server is the API's base URL, e.g. http://localhost:8080 (without /api/v1).
	Server string
	// Token, when set, is sent as "Authorization: Bearer <Token>".
	Token string
	// VehicleID the rows belong to; default: the file's base name without ".csv".
	VehicleID string
	// ChunkSize in bytes; default 1 MiB. Resuming an upload needs the same size as before.
	ChunkSize int64
	// Parallel is how many chunks are in flight at once; default 4.
	Parallel int
	// SkipInvalid asks finalize to insert the valid rows and report the invalid ones
	// instead of rejecting the whole file.
	SkipInvalid bool
	// Progress receives progress output; nil means none.
	Progress io.Writer
	// IsTerminal makes Progress a single redrawn line instead of periodic plain lines.
	IsTerminal bool
	// HTTPClient sends the requests; default: a client without an overall timeout
	// (finalizing a large file takes a while) that keeps Parallel idle connections.
	HTTPClient *http.Client
	// Retries is how often a request is retried after a network error, a 5xx or a 429,
	// with exponential backoff and jitter; default 5, negative means never. A 4xx is
	// never retried, nor is a 507 (the server's storage for unfinalized uploads is full).
	Retries int
	// RetryBaseDelay is the first backoff delay, doubled on each retry up to 30s;
	// default 500ms.
	RetryBaseDelay time.Duration
	// AfterChunk, when set, is called after the server stored each chunk, concurrently
	// from the sending goroutines. Tests use it to interrupt an upload at a known point.
	AfterChunk func(index int32)
}

// withDefaults validates opts and fills in the defaults; path names the file to upload.
func (o Options) withDefaults(path string) (Options, error) {
	if o.Server == "" {
		return o, errors.New("no server URL given")
	}
	u, err := url.Parse(o.Server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return o, fmt.Errorf("server URL %q must be an absolute http or https URL", o.Server)
	}
	switch {
	case o.ChunkSize == 0:
		o.ChunkSize = DefaultChunkSize
	case o.ChunkSize < 0:
		return o, fmt.Errorf("chunk size must be positive, got %d", o.ChunkSize)
	}
	switch {
	case o.Parallel == 0:
		o.Parallel = DefaultParallel
	case o.Parallel < 0:
		return o, fmt.Errorf("parallel must be positive, got %d", o.Parallel)
	}
	switch {
	case o.Retries == 0:
		o.Retries = DefaultRetries
	case o.Retries < 0:
		o.Retries = 0
	}
	if o.RetryBaseDelay <= 0 {
		o.RetryBaseDelay = DefaultRetryBaseDelay
	}
	if o.VehicleID == "" {
		o.VehicleID = vehicleIDFromPath(path)
		if o.VehicleID == "" {
			return o, fmt.Errorf("cannot take a vehicle id from the file name %q: give one explicitly", filepath.Base(path))
		}
	}
	if n := utf8.RuneCountInString(o.VehicleID); n > records.MaxVehicleIDLen {
		return o, fmt.Errorf("vehicle id %q is %d characters long; at most %d are allowed", o.VehicleID, n, records.MaxVehicleIDLen)
	}
	if o.HTTPClient == nil {
		o.HTTPClient = defaultHTTPClient(o.Parallel)
	}
	return o, nil
}

// vehicleIDFromPath is the file's base name without a ".csv" extension (any case).
func vehicleIDFromPath(path string) string {
	base := filepath.Base(path)
	if isCSV(base) {
		base = base[:len(base)-len(".csv")]
	}
	return base
}

func isCSV(name string) bool {
	return strings.EqualFold(filepath.Ext(name), ".csv")
}

// defaultHTTPClient keeps enough idle connections for the workers; the default
// transport keeps only two per host, so more workers would reconnect all the time.
func defaultHTTPClient(parallel int) *http.Client {
	t, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return &http.Client{}
	}
	t = t.Clone()
	t.MaxIdleConnsPerHost = max(parallel, t.MaxIdleConnsPerHost)
	return &http.Client{Transport: t}
}
