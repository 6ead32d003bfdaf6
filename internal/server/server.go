// Package server is the HTTP layer: Echo setup, middleware, the error handler and the strict
// handlers that implement the generated API.
package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/vehicle-data/vehicle-data/gen/api"
	"github.com/vehicle-data/vehicle-data/internal/apperr"
	"github.com/vehicle-data/vehicle-data/internal/config"
	"github.com/vehicle-data/vehicle-data/internal/ingest"
	"github.com/vehicle-data/vehicle-data/internal/metrics"
	"github.com/vehicle-data/vehicle-data/internal/records"
)

// Options are the server's dependencies.
type Options struct {
	Config  config.Config
	Logger  *slog.Logger
	Records *records.Store
	Ingest  *ingest.Service
	Ready   func(ctx context.Context) error // nil: always ready
	Metrics *metrics.Metrics                // nil: a fresh registry
	Docs    http.Handler                    // Swagger UI at /docs; nil: not served
	UI      http.Handler                    // the dashboard at /ui/, where GET / leads; nil: not served
	// Draining reports a shutdown under way: /readyz answers 503 and every response says
	// Connection: close, so a proxy stops sending here and reconnects elsewhere before the
	// listener closes. nil: never.
	Draining func() bool
	// Degraded says how a ready server serves short of its configuration (a read standby
	// that is down: reads go to the primary), for /readyz; nil or "": it does not.
	Degraded func() string
}

// jsonBodyLimit bounds every JSON request body; records and finalize requests are tiny.
const jsonBodyLimit = 1 << 20

// multipartOverhead is what the other form fields and part headers of a chunk may add.
const multipartOverhead = 1 << 20

// New builds the HTTP handler of the whole service.
func New(o Options) *echo.Echo {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Ready == nil {
		o.Ready = func(context.Context) error { return nil }
	}
	if o.Draining == nil {
		o.Draining = func() bool { return false }
	}
	ready := o.Ready
	o.Ready = func(ctx context.Context) error {
		if o.Draining() {
			return errShuttingDown
		}
		return ready(ctx)
	}
	if o.Degraded == nil {
		o.Degraded = func() string { return "" }
	}
	if o.Metrics == nil {
		o.Metrics = metrics.New(nil)
	}
	h := &Handlers{
		records:      o.Records,
		ingest:       o.Ingest,
		ready:        o.Ready,
		degraded:     o.Degraded,
		logger:       o.Logger,
		xlsxRowLimit: o.Config.XLSXRowLimit,
		exportStall:  o.Config.Limits.ExportStall,
		metrics:      o.Metrics,
	}
	g := newGates(o.Config.Limits)
	o.Metrics.AddGates(g.all()...)

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = errorHandler(o.Logger)

	// The contract's paths end in '/'; the same path without it is served too, by rewriting
	// (not redirecting, which would turn a POST into a GET in many clients).
	e.Pre(middleware.AddTrailingSlashWithConfig(middleware.TrailingSlashConfig{
		Skipper: func(c echo.Context) bool { return !strings.HasPrefix(c.Request().URL.Path, "/api/") },
	}))
	e.Use(requestContext)
	e.Use(closeWhenDraining(o.Draining))
	e.Use(accessLog(o.Logger, o.Metrics))
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			o.Logger.ErrorContext(c.Request().Context(), "panic", "err", err, "stack", string(stack))
			return err
		},
	}))
	if len(o.Config.CORSOrigins) > 0 {
		e.Use(middleware.CORSWithConfig(middleware.CORSConfig{
			AllowOrigins:  o.Config.CORSOrigins,
			AllowHeaders:  []string{"Authorization", "Content-Type", "X-Min-LSN", "X-Request-ID"},
			ExposeHeaders: []string{"Content-Disposition", "Location", "Retry-After", "X-Request-ID", "X-Write-LSN"},
		}))
	}
	e.Use(bodyLimit(o.Ingest.MaxChunkBytes() + multipartOverhead))
	if len(o.Config.APITokens) > 0 {
		e.Use(bearerAuth(o.Config.APITokens, o.Config.AuthReads))
	} else {
		o.Logger.Warn("no API tokens configured: every endpoint, writes included, is open to anyone who can reach the server")
	}
	e.Use(checkParams)

	api.RegisterHandlersWithOptions(e, api.NewStrictHandler(h, nil), api.RegisterHandlersOptions{
		// Route-level middleware, by operationId.
		OperationMiddlewares: map[string][]echo.MiddlewareFunc{
			"createVehicleData": {jsonOnly},
			"finalizeUpload":    {jsonOnly, admit(g.finalizes), noWriteDeadline},
			"exportVehicleData": {admit(g.exports), admitXLSX(g.xlsx)},
			"uploadChunk":       {admitChunk(g.chunkBytes, o.Ingest.MaxChunkBytes()+multipartOverhead)},
		},
	})
	e.GET("/metrics", echo.WrapHandler(o.Metrics.Handler()))
	if spec := api.SpecYAML(); len(spec) > 0 {
		e.GET("/openapi.yaml", func(c echo.Context) error {
			return c.Blob(http.StatusOK, "application/yaml; charset=utf-8", spec)
		})
	}
	if o.Docs != nil {
		e.GET("/docs", echo.WrapHandler(o.Docs))
		e.GET("/docs/*", echo.WrapHandler(o.Docs))
	}
	if o.UI != nil {
		// Static files: open even with API tokens (bearerAuth guards /api/ only); the page's
		// own API calls carry the token.
		getHead := []string{http.MethodGet, http.MethodHead}
		e.Match(getHead, "/", func(c echo.Context) error { return c.Redirect(http.StatusFound, "/ui/") })
		e.Match(getHead, "/ui", echo.WrapHandler(o.UI))
		e.Match(getHead, "/ui/*", echo.WrapHandler(o.UI))
	}
	return e
}

var errShuttingDown = errors.New("shutting down")

// closeWhenDraining asks the client (a proxy's kept-alive connection) to reconnect, which
// takes it to another replica once this one's listener has closed. It asks when the response
// starts, not when the request came: a request that began before the drain must not leave
// its connection idle in the proxy's pool, where the shutdown would close it under the
// proxy's next request.
func closeWhenDraining(draining func() bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			res := c.Response()
			res.Before(func() {
				if draining() {
					res.Header().Set("Connection", "close")
				}
			})
			return next(c)
		}
	}
}

// jsonOnly answers 415 to a body that is not JSON (application/json or application/*+json),
// before anything reads it.
func jsonOnly(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := requireJSON(c.Request()); err != nil {
			return err
		}
		return next(c)
	}
}

// noWriteDeadline lifts the server's write timeout for one route. A finalize of a very large
// file may take longer than that timeout; its answer must still arrive, or the client would
// retry an upload that was already inserted and deleted.
func noWriteDeadline(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		_ = http.NewResponseController(c.Response()).SetWriteDeadline(time.Time{})
		return next(c)
	}
}

func requireJSON(r *http.Request) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !(mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")) {
		return apperr.Unsupported("Content-Type must be application/json (got %q)", r.Header.Get("Content-Type"))
	}
	return nil
}

// requestContext gives every request an id (the client's X-Request-ID when it is plain)
// and puts it and the request's absolute URL into the request's context.
func requestContext(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		id := req.Header.Get(echo.HeaderXRequestID)
		if !validRequestID(id) {
			id = newRequestID()
		}
		c.Response().Header().Set(echo.HeaderXRequestID, id)
		u := &url.URL{Scheme: c.Scheme(), Host: req.Host, Path: req.URL.Path, RawQuery: req.URL.RawQuery}
		c.SetRequest(req.WithContext(withRequest(req.Context(), id, u)))
		return next(c)
	}
}

// accessLog writes one structured line per request and feeds the request metrics.
func accessLog(logger *slog.Logger, m *metrics.Metrics) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			if err := next(c); err != nil {
				c.Error(err) // write the error response now, so its status is logged
			}
			d := time.Since(start)
			route := c.Path()
			if route == "" {
				route = "unmatched"
			}
			status := c.Response().Status
			m.ObserveRequest(route, methodLabel(c.Request().Method), status, d)
			logger.InfoContext(c.Request().Context(), "request",
				"method", c.Request().Method, "path", c.Request().URL.Path, "route", route,
				"status", status, "bytes", c.Response().Size, "duration_ms", float64(d.Microseconds())/1000,
				"remote", c.RealIP())
			return nil
		}
	}
}

// bodyLimit caps request bodies: a chunk and its form overhead on the upload route, a
// small JSON body everywhere else.
func bodyLimit(uploadLimit int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			limit := int64(jsonBodyLimit)
			if strings.HasSuffix(c.Path(), "/upload_chunk/") {
				limit = uploadLimit
			}
			req := c.Request()
			if req.ContentLength > limit {
				return apperr.TooLarge("request body of %d bytes is larger than the limit of %d bytes", req.ContentLength, limit)
			}
			req.Body = http.MaxBytesReader(c.Response(), req.Body, limit)
			return next(c)
		}
	}
}

// bearerAuth requires one of tokens on writes (and reads when authReads). Tokens are
// compared as hashes in constant time, so timing tells nothing about them.
func bearerAuth(tokens []string, authReads bool) echo.MiddlewareFunc {
	sums := make([][32]byte, len(tokens))
	for i, t := range tokens {
		sums[i] = sha256.Sum256([]byte(t))
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			if !strings.HasPrefix(req.URL.Path, "/api/") {
				return next(c) // probes, metrics, docs and the spec stay open
			}
			isRead := req.Method == http.MethodGet || req.Method == http.MethodHead || req.Method == http.MethodOptions
			if isRead && !authReads {
				return next(c)
			}
			got, ok := strings.CutPrefix(req.Header.Get(echo.HeaderAuthorization), "Bearer ")
			if ok {
				sum := sha256.Sum256([]byte(strings.TrimSpace(got)))
				match := 0
				for i := range sums {
					match |= subtle.ConstantTimeCompare(sum[:], sums[i][:])
				}
				if match == 1 {
					return next(c)
				}
			}
			return &apperr.Error{Kind: apperr.KindUnauthorized, Detail: "missing or invalid bearer token (Authorization: Bearer <token>)"}
		}
	}
}
