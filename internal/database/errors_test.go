package database_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/vehicle-data/vehicle-data/internal/apperr"
	"github.com/vehicle-data/vehicle-data/internal/database"
)

func TestUnavailable(t *testing.T) {
	_, connectErr := pgconn.Connect(t.Context(), "postgres://u@127.0.0.1:1/db?connect_timeout=5")
	if connectErr == nil {
		t.Fatal("connecting to port 1 succeeded")
	}
	conflict := apperr.Conflict("taken")
	tests := []struct {
		name string
		err  error
		want bool // mapped to KindUnavailable
	}{
		{"nil", nil, false},
		{"a failed connect", fmt.Errorf("acquire: %w", connectErr), true},
		{"connection failure (class 08)", &pgconn.PgError{Code: "08006"}, true},
		{"admin shutdown", fmt.Errorf("list: %w", &pgconn.PgError{Code: "57P01"}), true},
		{"cannot connect now", &pgconn.PgError{Code: "57P03"}, true},
		{"statement past its deadline", fmt.Errorf("count: %w", context.DeadlineExceeded), true},
		{"a write on a broken connection", fmt.Errorf("list: %w", &net.OpError{Op: "write", Net: "unix", Err: syscall.EPIPE}), true},
		{"the server closed the connection", fmt.Errorf("list: %w", io.ErrUnexpectedEOF), true},
		{"statement timeout", &pgconn.PgError{Code: "57014", Message: "canceling statement due to statement timeout"}, true},
		{"lock timeout", &pgconn.PgError{Code: "55P03", Message: "canceling statement due to lock timeout"}, true},
		{"cancelled by the client's request (57014)", &pgconn.PgError{Code: "57014", Message: "canceling statement due to user request"}, false},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"cancelled by the client", context.Canceled, false},
		{"an expected failure", conflict, false},
		{"any other error", errors.New("boom"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := database.Unavailable(tt.err)
			e, ok := apperr.As(got)
			if isUnavailable := ok && e.Kind == apperr.KindUnavailable; isUnavailable != tt.want {
				t.Fatalf("Unavailable(%v) = %v, want Unavailable: %v", tt.err, got, tt.want)
			}
			if !tt.want && got != tt.err {
				t.Errorf("Unavailable(%v) = %v, want the error unchanged", tt.err, got)
			}
			if tt.want && (!errors.Is(got, tt.err) || e.Detail == "" || e.Detail == tt.err.Error()) {
				t.Errorf("Unavailable(%v) = %v: want the cause kept and a detail that hides it", tt.err, got)
			}
		})
	}
}
