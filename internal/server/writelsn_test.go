package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/vehicle-data/vehicle-data/internal/database"
)

// Creates and finalizes answer the primary's WAL position after them; every read takes it back
// as X-Min-LSN (served by the primary here: there is no standby) and names a malformed one.
func TestWriteLSNAndMinLSN(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	code, hdr, body := e.do(t, http.MethodPost, "/api/v1/vehicle_data/", "application/json",
		[]byte(`{"vehicle_id": "veh1", "timestamp": "2024-06-01T12:00:00Z", "odometer": 1, "soc": 5, "elevation": 1}`))
	if code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	created, err := database.ParseLSN(hdr.Get("X-Write-LSN"))
	if err != nil || created == 0 {
		t.Fatalf("create's X-Write-LSN %q: %v", hdr.Get("X-Write-LSN"), err)
	}

	if code, b := e.putChunk(t, "veh1", "f.csv", 0, 1, []byte(csvHeader+"2024-06-01T13:00:00Z,1,1,1,1,D\n")); code != 200 {
		t.Fatalf("chunk: %d %s", code, b)
	}
	fb, _ := json.Marshal(map[string]any{"vehicle_id": "veh1", "file_name": "f.csv", "total_chunks": 1})
	code, hdr, body = e.do(t, http.MethodPost, "/api/v1/vehicle_data/finalize_upload/", "application/json", fb)
	if code != 200 {
		t.Fatalf("finalize: %d %s", code, body)
	}
	finalized, err := database.ParseLSN(hdr.Get("X-Write-LSN"))
	if err != nil || finalized <= created {
		t.Errorf("finalize's X-Write-LSN %q (%v), want one past the create's %s", hdr.Get("X-Write-LSN"), err, created)
	}

	reads := []string{
		"/api/v1/vehicle_data/?vehicle_id=veh1",
		"/api/v1/vehicle_data/1/",
		"/api/v1/vehicle_data/export/?vehicle_id=veh1",
		"/api/v1/vehicles/",
		"/api/v1/vehicles/veh1/series/",
	}
	for _, path := range reads {
		for _, tt := range []struct {
			minLSN string
			want   int
		}{{finalized.String(), 200}, {"", 200}, {"0x16", 400}, {"0/3000148/1", 400}} {
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, e.URL+path, nil)
			if tt.minLSN != "" {
				req.Header.Set("X-Min-LSN", tt.minLSN)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("GET %s with X-Min-LSN %q: %d %s, want %d", path, tt.minLSN, resp.StatusCode, b, tt.want)
			}
			if tt.want == 400 && !strings.Contains(string(b), "X-Min-LSN") {
				t.Errorf("GET %s with X-Min-LSN %q: the 400 does not name it: %s", path, tt.minLSN, b)
			}
		}
	}
}
