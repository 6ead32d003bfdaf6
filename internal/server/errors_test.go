package server

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

// A request its client gave up on is logged as such, not as a server fault, whatever error the
// cancelled query left behind.
func TestCanceledRequestIsNoServerError(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := echo.New()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/api/v1/vehicle_data/", nil)
	errorHandler(logger)(errors.New("list records: canceling statement due to user request"), e.NewContext(req, httptest.NewRecorder()))
	if out := logs.String(); !strings.Contains(out, "request canceled by the client") || strings.Contains(out, `"level":"ERROR"`) {
		t.Errorf("log: %s", out)
	}
}
