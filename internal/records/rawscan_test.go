package records

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/vehicle-data/vehicle-data/internal/testdb"
)

// TestRawScannerMatchesPgx reads the same rows with rawScanner and with pgx's Scan, from a
// real PostgreSQL, over every type and destination rawScanner decodes itself: extremes,
// negatives, nulls, timestamps before 2000 and fractions of a second.
func TestRawScannerMatchesPgx(t *testing.T) {
	pool := testdb.New(t)
	ctx := context.Background()
	const q = `SELECT i2::int2, i4::int4, i8::int8, f::float8, nf::float8, ts::timestamptz, nts::timestamptz FROM (VALUES
		(0::int2, 0::int4, 0::int8, 0::float8, NULL::float8, '2000-01-01 00:00:00+00'::timestamptz, NULL::timestamptz),
		(-32768, -2147483648, -9223372036854775808, -1.5e300, 2.5, '1969-12-31 23:59:59.999999+00', '1900-01-01 00:00:00.000001+00'),
		(32767, 2147483647, 9223372036854775807, 'NaN', '-Infinity', '2294-12-31 23:59:59.999999+00', '2022-10-15 07:17:03.25+02'),
		(1, 100000, 12, 5e-324, 'Infinity', '1999-12-31 23:59:59.5+00', '4713-01-01 00:00:00+00 BC')
	) v (i2, i4, i8, f, nf, ts, nts)`
	type row struct {
		i2, i4, i8 int64
		f          float64
		nf         pgtype.Float8
		ts         time.Time
		nts        pgtype.Timestamptz
	}
	read := func(raw bool) []row {
		rows, err := pool.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []row
		var r row
		dest := []any{&r.i2, &r.i4, &r.i8, &r.f, &r.nf, &r.ts, &r.nts}
		sc := newRawScanner(dest...)
		for rows.Next() {
			if raw {
				err = sc.scan(rows)
			} else {
				err = rows.Scan(dest...)
			}
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, r)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if raw && len(sc.kinds) != len(dest) {
			t.Fatalf("rawScanner fell back to pgx: kinds %v", sc.kinds)
		}
		return out
	}
	got, want := read(true), read(false)
	if len(got) != 4 || len(got) != len(want) {
		t.Fatalf("%d rows, pgx %d", len(got), len(want))
	}
	same := func(a, b float64) bool { return a == b || a != a && b != b } // NaN equals NaN here
	for i := range want {
		g, w := got[i], want[i]
		if g.i2 != w.i2 || g.i4 != w.i4 || g.i8 != w.i8 || !same(g.f, w.f) || g.nf.Valid != w.nf.Valid || !same(g.nf.Float64, w.nf.Float64) ||
			!g.ts.Equal(w.ts) || g.nts.Valid != w.nts.Valid || !g.nts.Time.Equal(w.nts.Time) {
			t.Errorf("row %d:\n raw %+v\n pgx %+v", i, g, w)
		}
	}
}

// TestRawScannerRefuses: a NULL into a value that cannot hold one, and an infinite
// timestamp, are errors, as with pgx; a column of another type or in text is left to pgx.
func TestRawScannerRefuses(t *testing.T) {
	pool := testdb.New(t)
	ctx := context.Background()
	for _, c := range []struct {
		sql, err string
		dest     func() []any
	}{
		{"SELECT NULL::float8", "NULL", func() []any { var f float64; return []any{&f} }},
		{"SELECT NULL::int4", "NULL", func() []any { var n int64; return []any{&n} }},
		{"SELECT 'infinity'::timestamptz", "infinite", func() []any { var ts time.Time; return []any{&ts} }},
		{"SELECT 1.5::numeric", "", func() []any { var f float64; return []any{&f} }}, // pgx scans numeric into float64
	} {
		rows, err := pool.Query(ctx, c.sql)
		if err != nil {
			t.Fatal(err)
		}
		sc := newRawScanner(c.dest()...)
		if !rows.Next() {
			t.Fatalf("%s: no row", c.sql)
		}
		err = sc.scan(rows)
		rows.Close()
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s: %v", c.sql, err)
		case c.err == "" && len(sc.kinds) != 0:
			t.Errorf("%s: decoded by rawScanner, not left to pgx", c.sql)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: error %v, want one with %q", c.sql, err, c.err)
		}
	}
}
