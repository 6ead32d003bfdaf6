package uploader

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vehicle-data/vehicle-data/gen/client"
)

func TestAPIErrorMessage(t *testing.T) {
	col := "timestamp"
	many := make([]int32, 25)
	for i := range many {
		many[i] = int32(i * 2)
	}
	tests := []struct {
		name string
		err  *APIError
		want string
	}{
		{
			name: "detail only",
			err:  &APIError{Op: "upload_status", StatusCode: 401, Detail: "missing or invalid token"},
			want: "upload_status: server answered 401 Unauthorized: missing or invalid token",
		},
		{
			name: "no detail",
			err:  &APIError{Op: "finalize_upload", StatusCode: 502},
			want: "finalize_upload: server answered 502 Bad Gateway",
		},
		{
			name: "fields",
			err: &APIError{Op: "upload_chunk 0", StatusCode: 400, Detail: "invalid form",
				Fields: []client.FieldError{{Field: "vehicle_id", Message: "at most 100 characters"}, {Field: "chunk_index", Message: "must be less than total_chunks"}}},
			want: "upload_chunk 0: server answered 400 Bad Request: invalid form\n" +
				"  vehicle_id: at most 100 characters\n" +
				"  chunk_index: must be less than total_chunks",
		},
		{
			name: "rows: fewer than shown, more invalid than listed",
			err: &APIError{Op: "finalize_upload", StatusCode: 422, Detail: "150 rows are invalid", RowsInvalid: 150,
				Rows: []client.RowError{{Line: 9, Column: &col, Value: "2022-02-30", Message: "no such date"}}},
			want: "finalize_upload: server answered 422 Unprocessable Entity: 150 rows are invalid\n" +
				"  line 9, column timestamp: no such date (value \"2022-02-30\")",
		},
		{
			name: "missing chunks shortened, with hint",
			err:  &APIError{Op: "finalize_upload", StatusCode: 409, Detail: "chunks missing", MissingChunks: many, Hint: "upload again"},
			want: "finalize_upload: server answered 409 Conflict: chunks missing\n" +
				"  missing chunks: [0 2 4 6 8 10 12 14 16 18 20 22 24 26 28 30 32 34 36 38 ... (25 in all)]\n" +
				"  upload again",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestNewAPIErrorDetail(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		problem *client.Problem
		want    string
	}{
		{"typed problem", `{"detail":"ignored"}`, &client.Problem{Detail: "from the client"}, "from the client"},
		{"JSON detail", `{"detail":"database unavailable"}`, nil, "database unavailable"},
		{"HTML page on one line", "<html>\n  <body>502 Bad Gateway</body>\n</html>", nil, "<html> <body>502 Bad Gateway</body> </html>"},
		{"long body cut", strings.Repeat("é", 150), nil, strings.Repeat("é", 100) + "..."},
		{"binary body dropped", "\xff\xfe", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := newAPIError("op", 502, []byte(tt.body), tt.problem).Detail; got != tt.want {
				t.Errorf("Detail = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFormatResult(t *testing.T) {
	col := "soc"
	rows := make([]client.RowError, 6)
	for i := range rows {
		rows[i] = client.RowError{Line: int64(i + 2), Column: &col, Value: "-1", Message: "out of range"}
	}
	base := client.FinalizeResult{FileName: "veh1.csv", VehicleId: "veh1", RowsReceived: 1000, RowsInserted: 990, RowsDuplicate: 3, RowsInvalid: 7}
	withErrors := base
	withErrors.Errors = rows
	tests := []struct {
		name string
		res  *client.FinalizeResult
		want string
	}{
		{"nil", nil, ""},
		{"counts", &base, "veh1.csv (vehicle veh1): 1000 rows received, 990 inserted, 3 duplicate, 7 invalid"},
		{"skipped rows", &withErrors, "veh1.csv (vehicle veh1): 1000 rows received, 990 inserted, 3 duplicate, 7 invalid\n" +
			"  skipped line 2, column soc: out of range (value \"-1\")\n" +
			"  skipped line 3, column soc: out of range (value \"-1\")\n" +
			"  skipped line 4, column soc: out of range (value \"-1\")\n" +
			"  skipped line 5, column soc: out of range (value \"-1\")\n" +
			"  skipped line 6, column soc: out of range (value \"-1\")\n" +
			"  ... and 2 more invalid rows"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FormatResult(tt.res); got != tt.want {
				t.Errorf("FormatResult =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	base := 500 * time.Millisecond
	tests := []struct {
		name       string
		n          int
		retryAfter time.Duration
		lo, hi     time.Duration
	}{
		{"first retry", 0, 0, 250 * time.Millisecond, 500 * time.Millisecond},
		{"doubles", 3, 0, 2 * time.Second, 4 * time.Second},
		{"capped", 10, 0, maxBackoff / 2, maxBackoff},
		{"no overflow", 100, 0, maxBackoff / 2, maxBackoff},
		{"Retry-After wins when longer", 0, 10 * time.Second, 10 * time.Second, 10 * time.Second},
		{"Retry-After capped", 0, time.Hour, maxRetryAfter, maxRetryAfter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 100 {
				if got := backoff(base, tt.n, tt.retryAfter); got < tt.lo || got > tt.hi {
					t.Fatalf("backoff(%v, %d, %v) = %v, want within [%v, %v]", base, tt.n, tt.retryAfter, got, tt.lo, tt.hi)
				}
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	tests := []struct {
		value string
		want  time.Duration
	}{
		{"", 0},
		{"3", 3 * time.Second},
		{"-1", 0},
		{"Wed, 21 Oct 2015 07:28:00 GMT", 0},
		{"99999999999", maxRetryAfter},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			h := http.Header{}
			if tt.value != "" {
				h.Set("Retry-After", tt.value)
			}
			if got := parseRetryAfter(h); got != tt.want {
				t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.value, got, tt.want)
			}
		})
	}
}

func TestStatusErrorRetries(t *testing.T) {
	tests := []struct {
		status int
		retry  bool
	}{
		{http.StatusBadRequest, false},
		{http.StatusUnauthorized, false},
		{http.StatusNotFound, false},
		{http.StatusConflict, false},
		{http.StatusRequestEntityTooLarge, false}, // a chunk or an upload over its limit: the same again
		{http.StatusUnsupportedMediaType, false},
		{http.StatusUnprocessableEntity, false},
		{http.StatusTooManyRequests, true},
		{http.StatusInternalServerError, true},
		{http.StatusBadGateway, true},
		{http.StatusServiceUnavailable, true},
		{http.StatusGatewayTimeout, true},
		{http.StatusInsufficientStorage, false}, // frees up in hours, not within the retries
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			h := http.Header{"Retry-After": {"7"}}
			err := statusError(&APIError{Op: "upload_chunk 0", StatusCode: tt.status}, h)
			var r *retryableError
			if got := errors.As(err, &r); got != tt.retry {
				t.Fatalf("statusError(%d) retryable = %v, want %v", tt.status, got, tt.retry)
			}
			if tt.retry && r.retryAfter != 7*time.Second {
				t.Errorf("retryAfter = %v, want the server's 7s", r.retryAfter)
			}
			var apiErr *APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != tt.status {
				t.Errorf("statusError(%d) = %v, want it to wrap the *APIError", tt.status, err)
			}
		})
	}
}

// A cancelled context ends the wait for a retry at once.
func TestWithRetryStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	calls := 0
	start := time.Now()
	err := withRetry(ctx, 5, time.Hour, func(context.Context) error {
		calls++
		cancel()
		return &retryableError{err: errors.New("503")}
	})
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Errorf("withRetry: error %v after %d calls, want context.Canceled after 1", err, calls)
	}
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("withRetry took %v after the cancel, want no wait", elapsed)
	}
}
