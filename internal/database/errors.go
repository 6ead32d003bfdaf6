package database

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/vehicle-data/vehicle-data/internal/apperr"
)

// Unavailable maps an error meaning "the database cannot answer now" to apperr's Unavailable
// kind (a 503 a client may retry), keeping err as the cause for the logs; any other error,
// nil included, comes back as it is. The capability packages (records, ingest) call it on
// what their exported methods return, so the HTTP layer maps domain kinds only and never
// looks at pgconn errors.
func Unavailable(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := apperr.As(err); ok {
		return err // already classified
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "57014" && strings.Contains(pe.Message, "statement timeout"):
			// A time limit of ours, not the client's cancel (the same SQLSTATE).
			return &apperr.Error{Kind: apperr.KindUnavailable, RetryAfter: 2 * time.Second, Err: err,
				Detail: "the query ran longer than the statement timeout for short requests (statement-timeout); narrow the filter, or retry later"}
		case pe.Code == "55P03":
			return &apperr.Error{Kind: apperr.KindUnavailable, RetryAfter: 2 * time.Second, Err: err,
				Detail: "rows this request needs are held by a long write (a finalize of the same upload or vehicle) for longer than the lock timeout; retry when it has finished"}
		}
	}
	if !unavailable(err) {
		return err
	}
	return &apperr.Error{Kind: apperr.KindUnavailable, Detail: "the database is unavailable; try again later", Err: err}
}

func unavailable(err error) bool {
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true // a failed connect, also when a pool acquires a new connection
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// Class 08: connection exception; 57P0x: admin/crash shutdown, cannot connect now.
		return strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "57P")
	}
	// A connection that broke under a statement (the server restarted or failed over): the
	// pool drops it, and the next request gets a fresh one.
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
		return true
	}
	// A statement past its deadline: the database is too slow to answer now.
	return errors.Is(err, context.DeadlineExceeded)
}
