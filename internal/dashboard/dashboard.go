// Package dashboard serves the web dashboard (built from web/ui into gen/ui) at /ui/: every asset
// from the binary, content-hashed assets cached for good, index.html revalidated on each load,
// gzip when the client takes it. The files are read and compressed once, at start.
package dashboard

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
)

// Prefix is where the dashboard lives; GET / redirects here.
const Prefix = "/ui/"

const (
	cacheForever    = "public, max-age=31536000, immutable" // assets/: the name changes with the content
	cacheRevalidate = "no-cache"                            // index.html names the current assets
	// The page loads nothing but its own assets and talks only to this server.
	csp = "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; " +
		"connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)

type file struct {
	body, gz    []byte // gz: nil when gzip does not pay
	contentType string
	etag        string
	cache       string
}

// Handler serves fsys (index.html and assets/) under Prefix.
type Handler struct {
	files map[string]*file
}

// New reads every file of fsys; fsys must hold index.html.
func New(fsys fs.FS) (*Handler, error) {
	h := &Handler{files: map[string]*file{}}
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		f := &file{
			body:        body,
			contentType: mime.TypeByExtension(path.Ext(name)),
			etag:        `"` + hex.EncodeToString(sum[:12]) + `"`,
			cache:       cacheRevalidate,
		}
		if f.contentType == "" {
			f.contentType = http.DetectContentType(body)
		}
		if strings.HasPrefix(name, "assets/") {
			f.cache = cacheForever
		}
		if compressible(f.contentType) {
			var buf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
			_, _ = zw.Write(body)
			_ = zw.Close()
			if buf.Len() < len(body) {
				f.gz = buf.Bytes()
			}
		}
		h.files[name] = f
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	if h.files["index.html"] == nil {
		return nil, fmt.Errorf("dashboard: no index.html in the built files (run make generate)")
	}
	return h, nil
}

func compressible(contentType string) bool {
	return strings.HasPrefix(contentType, "text/") || strings.Contains(contentType, "javascript") ||
		strings.Contains(contentType, "json") || strings.Contains(contentType, "svg")
}

// ServeHTTP answers GET and HEAD for Prefix and below; /ui redirects to /ui/.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == strings.TrimSuffix(Prefix, "/") {
		http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, Prefix)
	if name == "" {
		name = "index.html"
	}
	f := h.files[name]
	if !ok || f == nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"detail":"Not found."}` + "\n"))
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", f.contentType)
	hd.Set("Cache-Control", f.cache)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Vary", "Accept-Encoding")
	if name == "index.html" {
		hd.Set("Content-Security-Policy", csp)
	}
	body, etag := f.body, f.etag
	if f.gz != nil && acceptsGzip(r) {
		body, etag = f.gz, strings.TrimSuffix(f.etag, `"`)+`-gz"`
		hd.Set("Content-Encoding", "gzip")
	}
	hd.Set("ETag", etag)
	if match := r.Header.Get("If-None-Match"); match != "" && etagMatches(match, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			return strings.ReplaceAll(strings.TrimSpace(params), " ", "") != "q=0"
		}
	}
	return false
}

func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}
