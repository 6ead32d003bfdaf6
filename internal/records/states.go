package records

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Pages ordered by shift_state alone, without the optional index (servesStates). Such a page
// is the rows of one state after the other, each state's by id. sample_hour_states says how
// many rows of each state every vehicle has in the scope and between which ids they lie, so a
// page skips whole states by their counts and reads the rest from the id index: 0.5-3.7 s at
// 10M rows as a sort of every matching row (README, "Performance").

// stateRows is one shift state's rows in a scope (state nil: the rows without one).
type stateRows struct {
	state *string
	n     int64
	parts []statePart // per vehicle, by key
}

// statePart is one vehicle's rows of a state: how many, and their smallest and largest id.
type statePart struct {
	key    int32
	n      int64
	lo, hi int64
}

// stateTotals runs stateTotalsSQL: the scope's states in travel order (from: see there).
func stateTotals(ctx context.Context, tx pgx.Tx, sc scope, desc bool, from **string) ([]stateRows, error) {
	sql, args := stateTotalsSQL(sc, desc, from)
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("count shift states: %w", err)
	}
	defer rows.Close()
	var out []stateRows
	for rows.Next() {
		var (
			state *string
			p     statePart
		)
		if err := rows.Scan(&state, &p.key, &p.n, &p.lo, &p.hi); err != nil {
			return nil, fmt.Errorf("count shift states: %w", err)
		}
		if i := len(out) - 1; i >= 0 && sameState(out[i].state, state) {
			out[i].n += p.n
			out[i].parts = append(out[i].parts, p)
			continue
		}
		out = append(out, stateRows{state: state, n: p.n, parts: []statePart{p}})
	}
	return out, rows.Err()
}

// sameState compares two states as the database's = does (deterministic collations compare
// bytes), with no state equal to no state.
func sameState(a, b *string) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

// statePage is page p in order o (shift_state alone): the states before the page are skipped
// by their counts, and each state the page reaches gives its part (statePartSQL).
func (s *Store) statePage(ctx context.Context, tx pgx.Tx, sc scope, o Order, p Page, vs *vehicles) ([]Record, error) {
	desc := o[0].Desc
	states, err := stateTotals(ctx, tx, sc, desc, nil)
	if err != nil {
		return nil, err
	}
	var out []Record
	skip := p.Offset()
	for _, st := range states {
		left := p.Size - int64(len(out))
		if left <= 0 {
			break
		}
		if skip >= st.n {
			skip -= st.n
			continue
		}
		sql, args := statePartSQL(sc, desc, st, skip, min(left, st.n-skip), nil, s.stateFrom)
		recs, err := queryRecords(ctx, tx, sql, args, vs)
		if err != nil {
			return nil, err
		}
		out = append(out, recs...)
		skip = 0
	}
	return out, nil
}

// stateSeek is seekRows in travel order (shift_state alone): the cursor's state's rows past
// its id, then the next states' from their start.
func (s *Store) stateSeek(ctx context.Context, tx pgx.Tx, sc scope, travel Order, c Cursor, limit int64, vs *vehicles) ([]Record, error) {
	var at *string
	switch k := c.Key[0].(type) {
	case nil:
	case string:
		at = &k
	default:
		return nil, fmt.Errorf("list records: a cursor value of type %T for shift_state", k)
	}
	desc := travel[0].Desc
	states, err := stateTotals(ctx, tx, sc, desc, &at)
	if err != nil {
		return nil, err
	}
	var out []Record
	for i, st := range states {
		left := limit - int64(len(out))
		if left <= 0 {
			break
		}
		var after *int64
		if i == 0 && sameState(st.state, at) {
			after = &c.ID
		}
		sql, args := statePartSQL(sc, desc, st, 0, left, after, s.stateFrom)
		recs, err := queryRecords(ctx, tx, sql, args, vs)
		if err != nil {
			return nil, err
		}
		out = append(out, recs...)
	}
	return out, nil
}
