package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/url"
)

// Request-scoped values reach strict handlers only through context.Context, so they
// travel under typed keys.
type ctxKey int

const (
	requestIDKey ctxKey = iota
	requestURLKey
)

func withRequest(ctx context.Context, id string, u *url.URL) context.Context {
	ctx = context.WithValue(ctx, requestIDKey, id)
	return context.WithValue(ctx, requestURLKey, u)
}

// RequestID returns the id of the request ctx belongs to, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// requestURL returns the absolute URL of the request ctx belongs to.
func requestURL(ctx context.Context) *url.URL {
	u, _ := ctx.Value(requestURLKey).(*url.URL)
	if u == nil {
		return &url.URL{}
	}
	return u
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// validRequestID accepts a client's X-Request-ID only when it is short and plain, so it
// can go into logs and headers as it is.
func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// LogHandler adds the request id of the record's context to every log line.
type LogHandler struct{ slog.Handler }

// Handle implements slog.Handler.
func (h LogHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h LogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return LogHandler{h.Handler.WithAttrs(as)}
}

// WithGroup implements slog.Handler.
func (h LogHandler) WithGroup(name string) slog.Handler { return LogHandler{h.Handler.WithGroup(name)} }
