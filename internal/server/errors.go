package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/vehicle-data/vehicle-data/gen/api"
	"github.com/vehicle-data/vehicle-data/internal/apperr"
)

var kindStatus = map[apperr.Kind]int{
	apperr.KindInvalid:      http.StatusBadRequest,
	apperr.KindNotFound:     http.StatusNotFound,
	apperr.KindConflict:     http.StatusConflict,
	apperr.KindTooLarge:     http.StatusRequestEntityTooLarge,
	apperr.KindUnsupported:  http.StatusUnsupportedMediaType,
	apperr.KindUnauthorized: http.StatusUnauthorized,
	apperr.KindUnavailable:  http.StatusServiceUnavailable,

	apperr.KindInsufficientStorage: http.StatusInsufficientStorage,
}

// errorHandler is Echo's one HTTPErrorHandler: it turns domain errors and the generated
// wrappers' binding errors into JSON problems, and hides internals behind a logged 5xx.
func errorHandler(logger *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		ctx := c.Request().Context()
		if c.Response().Committed {
			logger.WarnContext(ctx, "error after the response was committed", "err", err)
			return
		}
		status, body := problemFor(err)
		switch {
		case errors.Is(ctx.Err(), context.Canceled):
			// The client went away; its query was cancelled, which is no fault of the server
			// whatever error that left (a load generator's end of run logged hundreds of these).
			logger.InfoContext(ctx, "request canceled by the client", "err", err)
		case status == http.StatusInsufficientStorage:
			// A quota doing its job, not a fault of the server.
			logger.WarnContext(ctx, "request rejected: storage quota reached", "status", status, "err", err)
		case status >= 500:
			logger.ErrorContext(ctx, "request failed", "status", status, "err", err)
		default:
			logger.DebugContext(ctx, "request rejected", "status", status, "err", err)
		}
		if status == http.StatusUnauthorized {
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="vehicle-data"`)
		}
		if status == http.StatusServiceUnavailable {
			c.Response().Header().Set("Retry-After", retryAfter(err))
		}
		if c.Request().Method == http.MethodHead {
			err = c.NoContent(status)
		} else {
			err = c.JSON(status, body)
		}
		if err != nil {
			logger.WarnContext(ctx, "writing the error response failed", "err", err)
		}
	}
}

// defaultRetryAfter is the Retry-After of a 503 that names no time of its own (the database
// unreachable): soon enough to notice its return, slow enough not to hammer it.
const defaultRetryAfter = 2 * time.Second

// retryAfter is a 503's Retry-After in whole seconds, at least 1.
func retryAfter(err error) string {
	d := defaultRetryAfter
	if e, ok := apperr.As(err); ok && e.RetryAfter > 0 {
		d = e.RetryAfter
	}
	return strconv.Itoa(max(1, int((d+time.Second-1)/time.Second)))
}

// paramErr matches the generated wrappers' binding errors, which name the parameter.
var paramErr = regexp.MustCompile(`^Invalid format for parameter ([A-Za-z_]+): `)
var requiredErr = regexp.MustCompile(`^Query argument ([A-Za-z_]+) is required`)

func problemFor(err error) (int, api.Problem) {
	if e, ok := apperr.As(err); ok {
		p := api.Problem{Detail: e.Detail}
		if len(e.Fields) > 0 {
			fields := make([]api.FieldError, len(e.Fields))
			for i, f := range e.Fields {
				fields[i] = api.FieldError{Field: f.Field, Message: f.Message}
			}
			p.Errors = &fields
		}
		return kindStatus[e.Kind], p
	}

	var he *echo.HTTPError
	if errors.As(err, &he) {
		msg := fmt.Sprint(he.Message)
		switch he.Code {
		case http.StatusBadRequest:
			if m := paramErr.FindStringSubmatch(msg); m != nil {
				return badParam(m[1], paramMessage(m[1]))
			}
			if m := requiredErr.FindStringSubmatch(msg); m != nil {
				return badParam(m[1], "is required")
			}
			return he.Code, api.Problem{Detail: "malformed request: " + strings.TrimPrefix(msg, "code=400, message=")}
		case http.StatusNotFound:
			return he.Code, api.Problem{Detail: "Not found."}
		case http.StatusMethodNotAllowed:
			return he.Code, api.Problem{Detail: "Method not allowed."}
		case http.StatusUnsupportedMediaType:
			return he.Code, api.Problem{Detail: "unsupported Content-Type; this endpoint takes application/json"}
		case http.StatusRequestEntityTooLarge:
			return he.Code, api.Problem{Detail: "request body too large"}
		}
		if he.Code < 500 {
			return he.Code, api.Problem{Detail: msg}
		}
	}

	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return http.StatusRequestEntityTooLarge, api.Problem{Detail: fmt.Sprintf("request body is larger than the limit of %d bytes", mbe.Limit)}
	}
	if errors.Is(err, http.ErrNotMultipart) || errors.Is(err, http.ErrMissingBoundary) {
		return http.StatusUnsupportedMediaType, api.Problem{Detail: "Content-Type must be multipart/form-data with a boundary"}
	}
	return http.StatusInternalServerError, api.Problem{Detail: "internal server error"}
}

func badParam(name, msg string) (int, api.Problem) {
	return http.StatusBadRequest, api.Problem{
		Detail: fmt.Sprintf("invalid query parameter %s: %s", name, msg),
		Errors: &[]api.FieldError{{Field: name, Message: msg}},
	}
}

func paramMessage(name string) string {
	switch name {
	case "page", "page_size":
		return "must be an integer >= 1"
	case "id":
		return "must be a positive integer"
	}
	return "malformed value"
}
