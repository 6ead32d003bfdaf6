package records

import (
	"fmt"
	"strings"
	"time"

	"github.com/vehicle-data/vehicle-data/internal/apperr"
	"github.com/vehicle-data/vehicle-data/internal/timeparse"
)

// Filter selects records; a nil field does not filter.
type Filter struct {
	VehicleID *string
	From      *time.Time // inclusive
	To        *time.Time // inclusive
}

// FilterInput is a filter as it arrives from outside, still unparsed.
type FilterInput struct {
	VehicleID        *string
	InitialTimestamp *string
	FinalTimestamp   *string
	Timezone         *string
}

// ParseFilter validates every filter parameter and reports each bad one.
func ParseFilter(in FilterInput) (Filter, []apperr.FieldError) {
	f, _, errs := parseFilter(in)
	return f, errs
}

// parseFilter is ParseFilter that also returns the time zone (UTC by default).
func parseFilter(in FilterInput) (Filter, *time.Location, []apperr.FieldError) {
	var (
		f    Filter
		errs []apperr.FieldError
		loc  = time.UTC
	)
	if in.VehicleID != nil && *in.VehicleID != "" { // an empty filter is no filter, as in the original API
		v := *in.VehicleID
		if err := CheckText(v, MaxVehicleIDLen); err != nil {
			errs = append(errs, apperr.FieldError{Field: "vehicle_id", Message: err.Error()})
		} else {
			f.VehicleID = &v
		}
	}
	if in.Timezone != nil && strings.TrimSpace(*in.Timezone) != "" {
		l, err := timeparse.LoadLocation(strings.TrimSpace(*in.Timezone))
		if err != nil {
			errs = append(errs, apperr.FieldError{Field: "timezone", Message: err.Error()})
		} else {
			loc = l
		}
	}
	parse := func(name string, s *string) *time.Time {
		if s == nil || strings.TrimSpace(*s) == "" {
			return nil
		}
		t, err := timeparse.ParseQuery(*s, loc)
		if err != nil {
			errs = append(errs, apperr.FieldError{Field: name, Message: err.Error()})
			return nil
		}
		return &t
	}
	f.From = parse("initial_timestamp", in.InitialTimestamp)
	f.To = parse("final_timestamp", in.FinalTimestamp)
	if f.From != nil && f.To != nil && f.From.After(*f.To) {
		errs = append(errs, apperr.FieldError{
			Field:   "initial_timestamp",
			Message: fmt.Sprintf("must not be after final_timestamp (%s > %s)", f.From.UTC().Format(time.RFC3339Nano), f.To.UTC().Format(time.RFC3339Nano)),
		})
	}
	return f, loc, errs
}

// HasTimeRange reports whether the filter bounds timestamps.
func (f Filter) HasTimeRange() bool { return f.From != nil || f.To != nil }

// OrderField is one term of an ORDER BY.
type OrderField struct {
	Field string // a key of orderColumns
	Desc  bool
}

// Order is a whitelisted ordering; the id tie-break is implied.
type Order []OrderField

// OrderFields lists the fields accepted by ParseOrdering, for messages and docs.
const OrderFields = "id, vehicle_id, timestamp, speed, odometer, soc, elevation, shift_state"

// DefaultOrder is the list's order when none is asked for.
var DefaultOrder = Order{{Field: "timestamp"}}

// ParseOrdering reads "field,-field,..." against the whitelist. Empty means DefaultOrder.
func ParseOrdering(s string) (Order, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return DefaultOrder, nil
	}
	var (
		o    Order
		seen = map[string]bool{}
	)
	for _, term := range strings.Split(s, ",") {
		term = strings.TrimSpace(term)
		desc := false
		if strings.HasPrefix(term, "-") {
			desc, term = true, term[1:]
		}
		if term == "" {
			return nil, fmt.Errorf("empty field in %q; expected a comma-separated list of %s, each optionally prefixed by '-'", s, OrderFields)
		}
		if _, ok := orderColumns[term]; !ok {
			return nil, fmt.Errorf("unknown field %q; allowed: %s", truncate(term, 50), OrderFields)
		}
		if seen[term] {
			return nil, fmt.Errorf("field %q is named twice", term)
		}
		seen[term] = true
		o = append(o, OrderField{Field: term, Desc: desc})
	}
	return o, nil
}

// Page is a validated page request.
type Page struct {
	Number int64 // 1-based
	Size   int64

	// A piece of a page by vehicle_id (vehiclePage): its rows start skip rows into one
	// vehicle's, not at a multiple of Size.
	piece bool
	skip  int64
}

const (
	DefaultPageSize = 10
	MaxPageSize     = 100
)

// ParsePage applies the defaults and the page_size clamp, and reports values below 1.
func ParsePage(number, size *int32) (Page, []apperr.FieldError) {
	p := Page{Number: 1, Size: DefaultPageSize}
	var errs []apperr.FieldError
	if number != nil {
		if *number < 1 {
			errs = append(errs, apperr.FieldError{Field: "page", Message: "must be an integer >= 1"})
		} else {
			p.Number = int64(*number)
		}
	}
	if size != nil {
		switch {
		case *size < 1:
			errs = append(errs, apperr.FieldError{Field: "page_size", Message: "must be an integer >= 1"})
		case *size > MaxPageSize:
			p.Size = MaxPageSize
		default:
			p.Size = int64(*size)
		}
	}
	return p, errs
}

// Offset is the number of rows before this page.
func (p Page) Offset() int64 {
	if p.piece {
		return p.skip
	}
	return (p.Number - 1) * p.Size
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// withID returns o with its id tie-break written out (in the direction of the last term, as
// orderBy renders it) and nothing after id, which is unique.
func (o Order) withID() Order {
	out := make(Order, 0, len(o)+1)
	for _, f := range o {
		out = append(out, f)
		if f.Field == "id" {
			return out
		}
	}
	return append(out, OrderField{Field: "id", Desc: len(o) > 0 && o[len(o)-1].Desc})
}

// reversed flips every direction. Nulls follow, since PostgreSQL puts them last ascending and
// first descending: the reversed order is exactly the original read backwards.
func (o Order) reversed() Order {
	out := make(Order, len(o))
	for i, f := range o {
		out[i] = OrderField{Field: f.Field, Desc: !f.Desc}
	}
	return out
}

// seekTerms renders "the rows after c under o" as disjoint conjunctions: for each field, the
// rows equal to the cursor's row on the fields before it and after it on this one. Each term is
// one contiguous range of an index on the ordering, so every term is an index scan that can
// stop after the page; a disjunction PostgreSQL could not use as an index condition.
func seekTerms(o Order, c Cursor, param func(any) string) []string {
	o = o.withID()
	var (
		terms []string
		equal []string
	)
	for i, f := range o {
		col := orderColumns[f.Field]
		var v any
		if f.Field == "id" {
			v = c.ID
		} else {
			v = c.Key[i]
		}
		prefix := strings.Join(equal, " AND ")
		for _, after := range afterValue(col, v, f.Desc, nullable[f.Field], param) {
			if prefix != "" {
				after = prefix + " AND " + after
			}
			terms = append(terms, after)
		}
		switch {
		case i == len(o)-1: // id: nothing follows
		case v == nil:
			equal = append(equal, col+" IS NULL")
		default:
			equal = append(equal, col+" = "+param(v))
		}
	}
	return terms
}

// afterValue renders the conditions for "col sorts after v": ascending puts nulls last,
// descending first, as PostgreSQL does by default.
func afterValue(col string, v any, desc, canBeNull bool, param func(any) string) []string {
	switch {
	case v == nil && desc: // nulls come first: every non-null value is after
		return []string{col + " IS NOT NULL"}
	case v == nil: // nulls come last: nothing is after them
		return nil
	case desc:
		return []string{col + " < " + param(v)}
	case canBeNull:
		return []string{col + " > " + param(v), col + " IS NULL"}
	default:
		return []string{col + " > " + param(v)}
	}
}
