package dashboard_test

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/vehicle-data/vehicle-data/gen/ui"
	"github.com/vehicle-data/vehicle-data/internal/dashboard"
)

var site = fstest.MapFS{
	"index.html":             {Data: []byte(`<!doctype html><script type="module" src="/ui/assets/index-abc.js"></script>` + strings.Repeat(" ", 200))},
	"assets/index-abc.js":    {Data: []byte(strings.Repeat("console.log('dashboard');\n", 50))},
	"assets/index-def.css":   {Data: []byte(strings.Repeat("body { margin: 0 }\n", 50))},
	"assets/tiny.js":         {Data: []byte("1")},
	"assets/picture-123.png": {Data: []byte("\x89PNG\r\n\x1a\n")},
}

func get(t *testing.T, h http.Handler, method, target string, header ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func TestHandler(t *testing.T) {
	h, err := dashboard.New(site)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, method, target string
		header               []string
		status               int
		contentType, cache   string
		encoding, location   string
	}{
		{name: "index", method: "GET", target: "/ui/", status: 200, contentType: "text/html; charset=utf-8", cache: "no-cache"},
		{name: "index by name", method: "GET", target: "/ui/index.html", status: 200, contentType: "text/html; charset=utf-8", cache: "no-cache"},
		{name: "index gzipped", method: "GET", target: "/ui/", header: []string{"Accept-Encoding", "br, gzip"}, status: 200, contentType: "text/html; charset=utf-8", cache: "no-cache", encoding: "gzip"},
		{name: "gzip refused", method: "GET", target: "/ui/", header: []string{"Accept-Encoding", "gzip;q=0"}, status: 200, contentType: "text/html; charset=utf-8", cache: "no-cache"},
		{name: "hashed script", method: "GET", target: "/ui/assets/index-abc.js", header: []string{"Accept-Encoding", "gzip"}, status: 200, contentType: "text/javascript; charset=utf-8", cache: "public, max-age=31536000, immutable", encoding: "gzip"},
		{name: "hashed style", method: "GET", target: "/ui/assets/index-def.css", status: 200, contentType: "text/css; charset=utf-8", cache: "public, max-age=31536000, immutable"},
		{name: "too small to gzip", method: "GET", target: "/ui/assets/tiny.js", header: []string{"Accept-Encoding", "gzip"}, status: 200, contentType: "text/javascript; charset=utf-8", cache: "public, max-age=31536000, immutable"},
		{name: "image not gzipped", method: "GET", target: "/ui/assets/picture-123.png", header: []string{"Accept-Encoding", "gzip"}, status: 200, contentType: "image/png", cache: "public, max-age=31536000, immutable"},
		{name: "head", method: "HEAD", target: "/ui/", status: 200, contentType: "text/html; charset=utf-8", cache: "no-cache"},
		{name: "unknown asset", method: "GET", target: "/ui/assets/nope.js", status: 404, contentType: "application/json"},
		{name: "traversal", method: "GET", target: "/ui/../go.mod", status: 404, contentType: "application/json"},
		{name: "without slash", method: "GET", target: "/ui", status: 301, location: "/ui/"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := get(t, h, tc.method, tc.target, tc.header...)
			if res.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d", res.StatusCode, tc.status)
			}
			if tc.contentType != "" && res.Header.Get("Content-Type") != tc.contentType {
				t.Errorf("Content-Type = %q, want %q", res.Header.Get("Content-Type"), tc.contentType)
			}
			if got := res.Header.Get("Cache-Control"); tc.status == 200 && got != tc.cache {
				t.Errorf("Cache-Control = %q, want %q", got, tc.cache)
			}
			if got := res.Header.Get("Content-Encoding"); got != tc.encoding {
				t.Errorf("Content-Encoding = %q, want %q", got, tc.encoding)
			}
			if got := res.Header.Get("Location"); got != tc.location {
				t.Errorf("Location = %q, want %q", got, tc.location)
			}
			body, _ := io.ReadAll(res.Body)
			if tc.method == "HEAD" && len(body) != 0 {
				t.Errorf("HEAD answered %d bytes of body", len(body))
			}
			if tc.encoding == "gzip" {
				zr, err := gzip.NewReader(strings.NewReader(string(body)))
				if err != nil {
					t.Fatal(err)
				}
				plain, _ := io.ReadAll(zr)
				name := strings.TrimPrefix(tc.target, "/ui/")
				if name == "" {
					name = "index.html"
				}
				want := site[name]
				if want == nil || string(plain) != string(want.Data) {
					t.Errorf("gunzipped body differs from the file")
				}
			}
		})
	}
}

func TestHandlerRevalidates(t *testing.T) {
	h, err := dashboard.New(site)
	if err != nil {
		t.Fatal(err)
	}
	for _, enc := range []string{"", "gzip"} {
		first := get(t, h, "GET", "/ui/", "Accept-Encoding", enc)
		etag := first.Header.Get("ETag")
		if etag == "" {
			t.Fatalf("Accept-Encoding %q: no ETag", enc)
		}
		again := get(t, h, "GET", "/ui/", "Accept-Encoding", enc, "If-None-Match", etag)
		if again.StatusCode != http.StatusNotModified {
			t.Errorf("Accept-Encoding %q, If-None-Match %s: status = %d, want 304", enc, etag, again.StatusCode)
		}
	}
	plain := get(t, h, "GET", "/ui/").Header.Get("ETag")
	zipped := get(t, h, "GET", "/ui/", "Accept-Encoding", "gzip").Header.Get("ETag")
	if plain == zipped {
		t.Errorf("the gzipped and plain bodies share the ETag %s", plain)
	}
}

func TestNewNeedsIndex(t *testing.T) {
	if _, err := dashboard.New(fstest.MapFS{"assets/a.js": {Data: []byte("1")}}); err == nil {
		t.Fatal("New accepted files without index.html")
	}
}

// The committed build: its index.html names assets that are embedded beside it.
func TestEmbeddedBuild(t *testing.T) {
	h, err := dashboard.New(ui.Dist())
	if err != nil {
		t.Fatal(err)
	}
	res := get(t, h, "GET", "/ui/")
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		t.Fatalf("GET /ui/ = %d", res.StatusCode)
	}
	refs := 0
	for _, part := range strings.Split(string(body), `"`) {
		if !strings.HasPrefix(part, "/ui/assets/") {
			continue
		}
		refs++
		if r := get(t, h, "GET", part); r.StatusCode != 200 || r.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" {
			t.Errorf("GET %s = %d, Cache-Control %q", part, r.StatusCode, r.Header.Get("Cache-Control"))
		}
	}
	if refs < 2 {
		t.Errorf("index.html names %d assets, want the script and the stylesheet", refs)
	}
}
