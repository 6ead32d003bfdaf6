package server_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"

	"github.com/vehicle-data/vehicle-data/gen/ui"
	"github.com/vehicle-data/vehicle-data/internal/config"
	"github.com/vehicle-data/vehicle-data/internal/dashboard"
	"github.com/vehicle-data/vehicle-data/internal/ingest"
	"github.com/vehicle-data/vehicle-data/internal/server"
)

// The dashboard's files are static and public: with API tokens required even for reads they
// load without one, while the API the page then calls still asks for the token.
func TestDashboardOpenWithTokens(t *testing.T) {
	dash, err := dashboard.New(ui.Dist())
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.APITokens, cfg.AuthReads = []string{"s3cret"}, true
	// No database: nothing here reaches it (the API answers 401 before any query).
	ts := httptest.NewServer(server.New(server.Options{Config: cfg, UI: dash, Ingest: ingest.New(nil, ingest.Options{MaxChunkBytes: cfg.MaxChunkBytes})}))
	t.Cleanup(ts.Close)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	get := func(t *testing.T, method, path string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, ts.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res, string(body)
	}

	res, _ := get(t, http.MethodGet, "/")
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/ui/" {
		t.Errorf("GET / = %d to %q, want 302 to /ui/", res.StatusCode, res.Header.Get("Location"))
	}
	res, _ = get(t, http.MethodGet, "/ui")
	if res.StatusCode != http.StatusMovedPermanently || res.Header.Get("Location") != "/ui/" {
		t.Errorf("GET /ui = %d to %q, want 301 to /ui/", res.StatusCode, res.Header.Get("Location"))
	}
	res, index := get(t, http.MethodGet, "/ui/")
	if res.StatusCode != http.StatusOK || res.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("GET /ui/ = %d, Cache-Control %q; want 200, no-cache", res.StatusCode, res.Header.Get("Cache-Control"))
	}
	if res, _ := get(t, http.MethodHead, "/ui/"); res.StatusCode != http.StatusOK {
		t.Errorf("HEAD /ui/ = %d, want 200", res.StatusCode)
	}
	assets := regexp.MustCompile(`"(/ui/assets/[^"]+)"`).FindAllStringSubmatch(index, -1)
	if len(assets) < 2 {
		t.Fatalf("index.html names %d assets, want at least 2", len(assets))
	}
	for _, m := range assets {
		res, _ := get(t, http.MethodGet, m[1])
		if res.StatusCode != http.StatusOK || res.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" {
			t.Errorf("GET %s = %d, Cache-Control %q", m[1], res.StatusCode, res.Header.Get("Cache-Control"))
		}
	}
	if res, _ := get(t, http.MethodGet, "/api/v1/vehicles/"); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /api/v1/vehicles/ without a token = %d, want 401", res.StatusCode)
	}
}
