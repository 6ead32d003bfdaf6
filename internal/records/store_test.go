package records

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vehicle-data/vehicle-data/db/optional"
	"github.com/vehicle-data/vehicle-data/internal/apperr"
	"github.com/vehicle-data/vehicle-data/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// The count behind list and export starts from the per-vehicle figures and scans only
// vehicles a time range cuts; it must always equal a plain count(*).
func TestCountMatchesPlainCount(t *testing.T) {
	pool := testdb.New(t)
	ctx := t.Context()
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	_, err := pool.Exec(ctx, `INSERT INTO samples (vehicle_key, "timestamp", odometer, soc, elevation)
		SELECT vehicle_key_for('v' || (g % 4)), $1::timestamptz + (g % 4) * interval '3 hours' + (g / 4) * interval '7 seconds', 1, 1, 0
		FROM generate_series(0, 7999) g`, base)
	if err != nil {
		t.Fatal(err)
	}
	s := NewStore(pool, StoreOptions{})
	rng := rand.New(rand.NewPCG(1, 2))
	span := int64(16 * time.Hour)
	at := func() *time.Time {
		if rng.IntN(4) == 0 {
			return nil
		}
		v := base.Add(time.Duration(rng.Int64N(span)) - 2*time.Hour)
		if rng.IntN(5) == 0 { // exactly on a sample
			v = base.Add(time.Duration(rng.IntN(2000)) * 7 * time.Second)
		}
		return &v
	}
	for i := range 300 {
		var f Filter
		if rng.IntN(3) == 0 {
			v := []string{"v0", "v1", "v2", "v3", "nope"}[rng.IntN(5)]
			f.VehicleID = &v
		}
		f.From, f.To = at(), at()
		got, err := s.Count(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		w, args := viewWhere(f)
		var want int64
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM vehicle_data"+w, args...).Scan(&want); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("filter %d (vehicle %v, from %v, to %v): count %d, want %d", i, f.VehicleID, f.From, f.To, got, want)
		}
	}
}

func TestCountSQLUsesParametersOnly(t *testing.T) {
	v := "x' OR '1'='1"
	from, to := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	key := int32(3)
	sql, args := countSQL(scope{Filter: Filter{VehicleID: &v, From: &from, To: &to}, key: &key}, []int32{key}, []int32{key})
	if strings.Contains(sql, v) || strings.Contains(sql, "2024") || strings.Contains(sql, "2025") {
		t.Errorf("a value reached the SQL text: %s", sql)
	}
	if len(args) < 3 {
		t.Errorf("args: got %v", args)
	}
}

// viewWhere is the filter as plain SQL on the operators' view: the oracles' side, sharing
// nothing with the query builder.
func viewWhere(f Filter) (string, []any) {
	var (
		conds []string
		args  []any
	)
	if f.VehicleID != nil {
		args = append(args, *f.VehicleID)
		conds = append(conds, fmt.Sprintf("vehicle_id = $%d", len(args)))
	}
	if f.From != nil {
		args = append(args, *f.From)
		conds = append(conds, fmt.Sprintf(`"timestamp" >= $%d`, len(args)))
	}
	if f.To != nil {
		args = append(args, *f.To)
		conds = append(conds, fmt.Sprintf(`"timestamp" <= $%d`, len(args)))
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// A page no index serves runs on the sort pool: with that pool's only connection taken, such
// a page is refused with a 503 naming db-sort-conns while every other page still answers on
// the short requests' pool.
func TestSortedPagesHaveTheirOwnPool(t *testing.T) {
	url := testdb.NewURL(t)
	ctx := t.Context()
	open := func() *pgxpool.Pool {
		cfg, err := pgxpool.ParseConfig(url)
		if err != nil {
			t.Fatal(err)
		}
		cfg.MaxConns = 1
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		return pool
	}
	pool, sorts := open(), open()
	if _, err := pool.Exec(ctx, `INSERT INTO vehicle_data (vehicle_id, "timestamp", speed, odometer, soc, elevation, shift_state)
		SELECT 'v' || (g % 2), '2024-01-01'::timestamptz + g * interval '1 minute', g % 7, g, g % 100, 0, 'D'
		FROM generate_series(1, 3000) g`); err != nil {
		t.Fatal(err)
	}
	s := NewStore(pool, StoreOptions{SortPool: sorts, AcquireTimeout: 200 * time.Millisecond})
	held, err := sorts.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()
	v := "v1"
	for _, tc := range []struct {
		f      Filter
		o      string
		page   int64
		sorted bool
	}{
		{Filter{}, "timestamp", 1, false},
		{Filter{}, "-speed", 3, false},
		{Filter{VehicleID: &v}, "odometer", 20, false},
		{Filter{VehicleID: &v}, "soc", 1, false},
		{Filter{}, "shift_state", 1, false}, // statePage
		{Filter{}, "shift_state,soc", 1, true},
		{Filter{}, "soc", 1, true},
		{Filter{VehicleID: &v}, "elevation", 120, true},
	} {
		o, err := ParseOrdering(tc.o)
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.List(ctx, tc.f, o, Page{Number: tc.page, Size: 10}, "")
		switch {
		case !tc.sorted && err != nil:
			t.Errorf("%s page %d: %v; want an answer from the short requests' pool", tc.o, tc.page, err)
		case tc.sorted && (err == nil || !strings.Contains(err.Error(), "db-sort-conns")):
			t.Errorf("%s page %d: err %v; want a 503 naming db-sort-conns", tc.o, tc.page, err)
		}
		if tc.sorted {
			if e, ok := apperr.As(err); !ok || e.Kind != apperr.KindUnavailable {
				t.Errorf("%s page %d: %v is not a 503", tc.o, tc.page, err)
			}
		}
	}
}

// With the optional index (db/optional), pages by shift_state alone read it in order: with sorts disabled, no Sort sits under
// the page's Limit, in every scope and both ways, page 1 and deep (the deferred join). A Sort of
// the page's own rows above it, as mergedPage's outer ORDER BY, is fine. Without the index, or
// with a part the index cannot serve in order, PostgreSQL sorts every matching row and this fails.
func TestShiftStatePagesReadTheirIndex(t *testing.T) {
	pool := testdb.New(t)
	ctx := t.Context()
	if ok, err := HasShiftStateIndex(ctx, pool); err != nil || ok {
		t.Fatalf("before db/optional: index %v, %v", ok, err)
	}
	if _, err := pool.Exec(ctx, optional.ShiftStateIndex); err != nil {
		t.Fatal(err)
	}
	if ok, err := HasShiftStateIndex(ctx, pool); err != nil || !ok {
		t.Fatalf("after db/optional: index %v, %v", ok, err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO vehicle_data (vehicle_id, "timestamp", speed, odometer, soc, elevation, shift_state)
		SELECT 'v' || (g % 3), '2024-01-01'::timestamptz + g * interval '10 seconds', g % 7, g, g % 100, 0,
			(ARRAY['D', 'P', 'R', NULL])[1 + g / 7 % 4]
		FROM generate_series(1, 30000) g`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "ANALYZE"); err != nil {
		t.Fatal(err)
	}
	s := NewStore(pool, StoreOptions{ShiftStateIndex: true})
	from, to := time.Date(2024, 1, 1, 7, 3, 0, 0, time.UTC), time.Date(2024, 1, 1, 21, 48, 0, 0, time.UTC)
	v := "v1"
	for _, f := range []Filter{{}, {VehicleID: &v}, {From: &from, To: &to}, {VehicleID: &v, From: &from, To: &to}} {
		for _, desc := range []bool{false, true} {
			for _, number := range []int64{1, deferredFrom/10 + 5} {
				o := Order{{Field: "shift_state", Desc: desc}}
				name := fmt.Sprintf("%v vehicle %v range %v page %d", o, f.VehicleID != nil, f.From != nil, number)
				if sortsAll(f, o, Page{Number: number, Size: 10}, false) {
					t.Fatalf("%s: counted as a sort of every row", name)
				}
				tx, err := pool.Begin(ctx)
				if err != nil {
					t.Fatal(err)
				}
				vs, err := s.vehicleKeys(ctx, tx)
				if err != nil {
					t.Fatal(err)
				}
				sc := vs.scope(f)
				sc.shiftIndex = true
				sql, args := pageSQL(sc, o, Page{Number: number, Size: 10}, seekFrom)
				var plan []map[string]any
				if _, err := tx.Exec(ctx, "SET LOCAL enable_sort = off"); err != nil {
					t.Fatal(err)
				}
				if err := tx.QueryRow(ctx, "EXPLAIN (FORMAT JSON) "+sql, args...).Scan(&plan); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				tx.Rollback(ctx)
				text := fmt.Sprint(plan)
				if !strings.Contains(text, "samples_shift_state_idx") {
					t.Errorf("%s: the plan does not read samples_shift_state_idx:\n%s", name, text)
				}
				if bad := sortUnderLimit(plan[0]["Plan"].(map[string]any), false); bad {
					t.Errorf("%s: a Sort under the page's Limit:\n%s", name, text)
				}
			}
		}
	}
}

// sortUnderLimit reports a Sort node below a Limit in the EXPLAIN (FORMAT JSON) tree n.
func sortUnderLimit(n map[string]any, limited bool) bool {
	switch n["Node Type"] {
	case "Limit":
		limited = true
	case "Sort", "Incremental Sort":
		if limited {
			return true
		}
	}
	kids, _ := n["Plans"].([]any)
	for _, k := range kids {
		if sortUnderLimit(k.(map[string]any), limited) {
			return true
		}
	}
	return false
}
