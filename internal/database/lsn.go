package database

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// LSN is a position in PostgreSQL's write-ahead log, written as PostgreSQL does: two
// hexadecimal halves, "0/3000148".
type LSN uint64

// ParseLSN reads an LSN in PostgreSQL's text form.
func ParseLSN(s string) (LSN, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if ok && hi != "" && lo != "" && len(hi) <= 8 && len(lo) <= 8 {
		h, err1 := strconv.ParseUint(hi, 16, 32)
		l, err2 := strconv.ParseUint(lo, 16, 32)
		if err1 == nil && err2 == nil {
			return LSN(h<<32 | l), nil
		}
	}
	return 0, fmt.Errorf("%q is not a WAL position (such as 0/3000148)", s)
}

func (l LSN) String() string { return fmt.Sprintf("%X/%X", uint64(l)>>32, uint32(l)) }

type minLSNKey struct{}

// WithMinLSN marks ctx's read as one that must see every write up to lsn (a client's
// X-Min-LSN): a standby serves it only once it has replayed lsn (see Standby.AwaitReplay).
func WithMinLSN(ctx context.Context, lsn LSN) context.Context {
	return context.WithValue(ctx, minLSNKey{}, lsn)
}

// MinLSN is the position WithMinLSN put into ctx.
func MinLSN(ctx context.Context) (LSN, bool) {
	lsn, ok := ctx.Value(minLSNKey{}).(LSN)
	return lsn, ok
}

// WriteLSN returns the primary's WAL position right after a write committed on q: a standby
// that has replayed up to it holds the write. It is the insert position, which lies past the
// commit record whether or not the commit waited for its flush (synchronous_commit=off), and
// may include other sessions' records of the same moment.
func WriteLSN(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (LSN, error) {
	var s string
	if err := q.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&s); err != nil {
		return 0, fmt.Errorf("read the WAL position: %w", err)
	}
	return ParseLSN(s)
}
