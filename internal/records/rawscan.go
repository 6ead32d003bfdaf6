package records

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// rawScanner reads the series' rows by position, decoding the binary values itself: pgx's
// Scan, through its per-column scan plans and interfaces, was the largest part of reading
// the hour rows (27 columns, 2,668 rows for a 1M-row vehicle's whole span), and reading was
// a fifth of the server's time under the series mix. It knows the few types those queries
// return (integers, float8, timestamptz) into the few destinations they scan into; a row
// set in any other shape (text format, another type) is scanned by pgx as before.
type rawScanner struct {
	dest  []any
	kinds []rawKind // nil until the first row; empty when pgx must scan
}

type rawKind uint8

const (
	rawInt rawKind = iota + 1
	rawFloat
	rawTime
	rawNullFloat
	rawNullTime
)

func newRawScanner(dest ...any) *rawScanner { return &rawScanner{dest: dest} }

// scan reads the current row into the destinations.
func (s *rawScanner) scan(rows pgx.Rows) error {
	if s.kinds == nil {
		s.kinds = rawKinds(rows, s.dest)
	}
	if len(s.kinds) == 0 {
		return rows.Scan(s.dest...)
	}
	vals := rows.RawValues()
	if len(vals) != len(s.dest) {
		return fmt.Errorf("%d values for %d destinations", len(vals), len(s.dest))
	}
	for i, v := range vals {
		if err := decodeRaw(s.kinds[i], v, s.dest[i]); err != nil {
			return fmt.Errorf("column %d: %w", i, err)
		}
	}
	return nil
}

// rawKinds matches each column's type and format to its destination; empty when one does
// not match.
func rawKinds(rows pgx.Rows, dest []any) []rawKind {
	fds := rows.FieldDescriptions()
	if len(fds) != len(dest) {
		return []rawKind{}
	}
	kinds := make([]rawKind, len(dest))
	for i, fd := range fds {
		if fd.Format != pgtype.BinaryFormatCode {
			return []rawKind{}
		}
		var k rawKind
		switch fd.DataTypeOID {
		case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID:
			if _, ok := dest[i].(*int64); ok {
				k = rawInt
			}
		case pgtype.Float8OID:
			switch dest[i].(type) {
			case *float64:
				k = rawFloat
			case *pgtype.Float8:
				k = rawNullFloat
			}
		case pgtype.TimestamptzOID:
			switch dest[i].(type) {
			case *time.Time:
				k = rawTime
			case *pgtype.Timestamptz:
				k = rawNullTime
			}
		}
		if k == 0 {
			return []rawKind{}
		}
		kinds[i] = k
	}
	return kinds
}

// PostgreSQL's timestamps count microseconds from 2000-01-01 UTC.
var pgEpochMicros = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()

func decodeRaw(k rawKind, v []byte, dest any) error {
	if v == nil {
		switch k {
		case rawNullFloat:
			*dest.(*pgtype.Float8) = pgtype.Float8{}
			return nil
		case rawNullTime:
			*dest.(*pgtype.Timestamptz) = pgtype.Timestamptz{}
			return nil
		}
		return fmt.Errorf("NULL where a value is required")
	}
	switch k {
	case rawInt:
		var n int64
		switch len(v) {
		case 2:
			n = int64(int16(binary.BigEndian.Uint16(v)))
		case 4:
			n = int64(int32(binary.BigEndian.Uint32(v)))
		case 8:
			n = int64(binary.BigEndian.Uint64(v))
		default:
			return fmt.Errorf("an integer of %d bytes", len(v))
		}
		*dest.(*int64) = n
	case rawFloat, rawNullFloat:
		if len(v) != 8 {
			return fmt.Errorf("a float8 of %d bytes", len(v))
		}
		f := math.Float64frombits(binary.BigEndian.Uint64(v))
		if k == rawFloat {
			*dest.(*float64) = f
		} else {
			*dest.(*pgtype.Float8) = pgtype.Float8{Float64: f, Valid: true}
		}
	case rawTime, rawNullTime:
		if len(v) != 8 {
			return fmt.Errorf("a timestamptz of %d bytes", len(v))
		}
		us := int64(binary.BigEndian.Uint64(v))
		if us == math.MaxInt64 || us == math.MinInt64 {
			return fmt.Errorf("an infinite timestamp")
		}
		t := time.UnixMicro(us + pgEpochMicros)
		if k == rawTime {
			*dest.(*time.Time) = t
		} else {
			*dest.(*pgtype.Timestamptz) = pgtype.Timestamptz{Time: t, Valid: true}
		}
	}
	return nil
}
