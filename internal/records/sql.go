package records

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// This file is the one query builder behind list, count, export and series: the SQL whose shape
// depends on the request (filters, the whitelisted ORDER BY, the rollup levels a time range
// needs). Values only ever travel as numbered parameters.

// scope is a filter resolved against the database: its vehicle as a key.
type scope struct {
	Filter
	key  *int32  // the filtered vehicle's key; nil without a vehicle filter
	keys []int32 // without a vehicle filter, every vehicle's key, ascending
	// shiftIndex: samples_shift_state_idx exists (StoreOptions.ShiftStateIndex).
	shiftIndex bool
}

// none reports a vehicle filter naming a vehicle without samples: nothing matches.
func (sc scope) none() bool { return sc.VehicleID != nil && sc.key == nil }

type sqlArgs []any

func (a *sqlArgs) add(v any) string {
	*a = append(*a, v)
	return fmt.Sprintf("$%d", len(*a))
}

// orderColumns is the whitelist: the only text from a request that can shape SQL is a key of
// this map, and what reaches SQL is the map's value (s is samples, v is vehicles).
var orderColumns = map[string]string{
	"id":          "s.id",
	"vehicle_id":  "v.vehicle_id",
	"timestamp":   `s."timestamp"`,
	"speed":       "s.speed",
	"odometer":    "s.odometer",
	"soc":         "s.soc",
	"elevation":   "s.elevation",
	"shift_state": "s.shift_state",
}

// recordColumns are what every list and export query returns, in Record's order, with the
// vehicle as its key (the store maps keys to ids: no join per row).
const recordColumns = `s.id, s.vehicle_key, s."timestamp", s.speed, s.odometer, s.soc, s.elevation, s.shift_state`

// forScope drops what a scope makes constant: with a vehicle filter every row has the same
// vehicle_id, so ordering by it orders nothing (and would cost a join). A dropped last term
// keeps its direction for the id tie-break.
func (o Order) forScope(sc scope) Order {
	if sc.VehicleID == nil {
		return o
	}
	out := make(Order, 0, len(o))
	for i, f := range o {
		if f.Field != "vehicle_id" {
			out = append(out, f)
		} else if i == len(o)-1 {
			out = append(out, OrderField{Field: "id", Desc: f.Desc})
		}
	}
	if len(out) == 0 {
		return Order{{Field: "id"}}
	}
	return out
}

func (o Order) needsVehicles() bool {
	for _, f := range o {
		if f.Field == "vehicle_id" {
			return true
		}
	}
	return false
}

// orderBy renders the ORDER BY clause from whitelisted columns only, ending with the id
// tie-break (in the direction of the last term, so a descending list stays descending).
// Unqualified, it names the columns of a derived table instead of samples and vehicles.
func (o Order) orderBy(qualified bool) string {
	var b strings.Builder
	b.WriteString(" ORDER BY ")
	for i, f := range o.withID() {
		if i > 0 {
			b.WriteString(", ")
		}
		col := orderColumns[f.Field]
		if !qualified {
			col = col[2:]
		}
		b.WriteString(col)
		if f.Desc {
			b.WriteString(" DESC")
		}
	}
	return b.String()
}

// from is the FROM clause: samples, and vehicles when the ordering needs their ids.
func (o Order) from() string {
	if o.needsVehicles() {
		return " FROM samples s JOIN vehicles v ON v.vehicle_key = s.vehicle_key"
	}
	return " FROM samples s"
}

// whereOrdered renders the scope's conditions for a query in order o, with extra ones ANDed
// on. With a vehicle and a time range, an ordering by
// odometer also gets the odometer's bounds in that range from the hour rollup. The odometer
// grows with time, so the index on (vehicle_key, odometer) then starts at the range's first
// row instead of the vehicle's, which the time range alone cannot tell it (measured at 10M
// rows: page 1 of a 20% range 95 ms without the bounds). The hours that hold the range's ends
// make the bounds a little wider than the range's own, which only costs a few rows filtered out;
// the minute rollup would give exact bounds but has 60 times the rows to read (a 20% range:
// 18,078 minute rows, 14 of the page's 14.6 ms).
func (sc scope) whereOrdered(args *sqlArgs, o Order, extra ...string) string {
	var conds []string
	if sc.key != nil {
		conds = append(conds, "s.vehicle_key = "+args.add(*sc.key))
	}
	if sc.From != nil {
		conds = append(conds, `s."timestamp" >= `+args.add(*sc.From))
	}
	if sc.To != nil {
		conds = append(conds, `s."timestamp" <= `+args.add(*sc.To))
	}
	if len(o) > 0 && o[0].Field == "odometer" && sc.key != nil && sc.HasTimeRange() {
		hours := sc.coveringHours(args)
		conds = append(conds, "s.odometer >= (SELECT min(h.odometer_min)"+hours+")",
			"s.odometer <= (SELECT max(h.odometer_max)"+hours+")")
	}
	if len(o) > 0 && o[0].Field == "id" && sc.key != nil {
		// The index on id alone holds every vehicle's rows: bounded by the ids of the vehicle's
		// hours (those of its range), a scan reads that vehicle's stretch of it instead of
		// everybody's (page 1 by id of one vehicle of ten, loaded last: 1.3 s without).
		hours := sc.coveringHours(args)
		conds = append(conds, "s.id >= (SELECT min(h.id_min)"+hours+")", "s.id <= (SELECT max(h.id_max)"+hours+")")
	}
	if len(o) > 0 && o[0].Field == "id" && sc.key == nil && len(sc.keys) > 0 && sc.HasTimeRange() {
		// Every vehicle's rows in a time range lie between the smallest and the largest id of
		// the hours that cover it: the scan of the id index starts there instead of at the
		// first id, fetching every older row to test its timestamp (page 1 of a 20% range of
		// ten vehicles at 10M rows: 70-88 ms).
		hours := " FROM sample_hours h WHERE h.vehicle_key = ANY(" + args.add(sc.keys) + ")" + sc.coveringBuckets(args)
		conds = append(conds, "s.id >= (SELECT min(h.id_min)"+hours+")", "s.id <= (SELECT max(h.id_max)"+hours+")")
	}
	conds = append(conds, extra...)
	if len(conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(conds, " AND ")
}

// coveringHours is the FROM and WHERE of a subquery on the hour rollup rows that cover the
// scope's time range (a vehicle's); uncorrelated, so an aggregate over it is computed once and
// can bound an index scan. Its bounds are the range's own or a little wider, never narrower.
func (sc scope) coveringHours(args *sqlArgs) string {
	return " FROM sample_hours h WHERE h.vehicle_key = " + args.add(*sc.key) + sc.coveringBuckets(args)
}

// coveringBuckets is the condition on sample_hours h's buckets of coveringHours.
func (sc scope) coveringBuckets(args *sqlArgs) string {
	var conds string
	if sc.From != nil {
		conds += " AND h.bucket >= date_trunc('hour', " + args.add(*sc.From) + "::timestamptz, 'UTC')"
	}
	if sc.To != nil {
		conds += " AND h.bucket <= " + args.add(*sc.To)
	}
	return conds
}

// splitsSpeed reports a page ordered first by speed within a vehicle's time range, which
// speedParts serves.
func (sc scope) splitsSpeed(o Order) bool {
	return sc.key != nil && sc.HasTimeRange() && len(o) > 0 && o[0].Field == "speed"
}

// speedParts is the FROM of a page ordered first by speed within a vehicle's time range: the
// rows without a speed and the rows with one, each in order o from the index on (vehicle_key,
// speed, id) and cut at limit, merged by the caller's ORDER BY. Rows without a speed come first
// in a descending order (PostgreSQL's NULLS FIRST), by id. Asked as one scan, the index offers
// them from the vehicle's highest id down, and every row after the range is read and dropped
// (121,315 index entries for page 1 of a 20% range at 10M rows, 23 ms). On their own, the ids
// of the hours covering the range bound that part of the index, and the speeds of those hours
// bound the other part.
func (sc scope) speedParts(args *sqlArgs, o Order, cols, limit string) string {
	hours := sc.coveringHours(args)
	part := func(conds ...string) string {
		return "(SELECT " + cols + " FROM samples s" + sc.whereOrdered(args, o, conds...) + o.orderBy(true) + " LIMIT " + limit + ")"
	}
	nulls := part("s.speed IS NULL", "s.id >= (SELECT min(h.id_min)"+hours+")", "s.id <= (SELECT max(h.id_max)"+hours+")")
	speeds := part("s.speed IS NOT NULL", "s.speed >= (SELECT min(h.speed_min)"+hours+")", "s.speed <= (SELECT max(h.speed_max)"+hours+")")
	return " FROM (" + nulls + " UNION ALL " + speeds + ") s"
}

// mergeMaxVehicles is the most vehicles whose rows a page without a vehicle filter merges
// (mergedPage). Each is a branch of the query, planned with it: past a few dozen the
// planning costs more than the sort it saves on a small table, and on a large one the
// page sorts as before.
const mergeMaxVehicles = 64

// mergesVehicles reports a page without a vehicle filter ordered by speed or odometer alone
// (or shift_state, where its optional index exists), which mergedPage serves.
func (sc scope) mergesVehicles(o Order) bool {
	return sc.key == nil && len(sc.keys) > 0 && len(sc.keys) <= mergeMaxVehicles && len(o) == 1 && merged(o[0].Field, sc.shiftIndex)
}

// merged reports a field with an index on (vehicle_key, field, id) INCLUDE ("timestamp"):
// speed and odometer, and shift_state where its optional index exists.
func merged(field string, shiftIndex bool) bool {
	return field == "speed" || field == "odometer" || field == "shift_state" && shiftIndex
}

// shiftStateParts is how many of a vehicle's shift states get a part of their own in a page by
// shift_state within a time range (mergedPage); the rest share one. Real logs have D, N, P, R
// and no state at all, mostly D or none.
const shiftStateParts = 3

// splitsShiftState reports a page of a vehicle's time range ordered by shift_state alone, which
// mergedPage serves as it does across vehicles (without a range its index is the order).
func (sc scope) splitsShiftState(o Order) bool {
	return sc.shiftIndex && sc.key != nil && sc.HasTimeRange() && len(o) == 1 && o[0].Field == "shift_state"
}

// boundsVehicles reports a page without a vehicle filter ordered first by soc or elevation,
// which boundedPage serves (unless the order names vehicle_id, which needs the join).
func (sc scope) boundsVehicles(o Order) bool {
	return sc.key == nil && sc.VehicleID == nil && len(sc.keys) > 0 && len(sc.keys) <= mergeMaxVehicles &&
		len(o) > 0 && (o[0].Field == "soc" || o[0].Field == "elevation") && !o.needsVehicles()
}

// byVehicle reports a page without a vehicle filter ordered first by vehicle_id, which
// vehiclePage serves.
func (sc scope) byVehicle(o Order) bool {
	return sc.key == nil && len(sc.keys) > 0 && len(sc.keys) <= mergeMaxVehicles && len(o) > 0 && o[0].Field == "vehicle_id"
}

// mergedPage is a page without a vehicle filter ordered by speed, odometer or shift_state
// alone (and a vehicle's time range by shift_state: splitsShiftState). No index
// holds every vehicle's rows in that order, so PostgreSQL sorted every matching row (page 1
// by speed at 10M rows: 1.6 s); each vehicle's index on (vehicle_key, speed or odometer, id)
// does, and merging the vehicles' scans (a Merge Append) reads only the rows ahead of the
// page's end. Only the page's rows are fetched from the table.
//
// In a time range each vehicle's scan is bounded as its own page's is (whereOrdered,
// speedParts): by the odometers, or the ids, of its hours that cover the range, and by speed
// in two scans, the rows without one and those with one. The bounds of every vehicle are read
// once, in one CTE: as subqueries of each scan they took longer to plan than the page to read
// (ten vehicles: 15-40 ms of planning).
func (sc scope) mergedPage(args *sqlArgs, o Order, p Page) string {
	limit := args.add(p.Offset() + p.Size)
	cols := "s.vehicle_key, " + o.columns()
	var with string
	if sc.HasTimeRange() {
		cover := " FROM sample_hours h WHERE h.vehicle_key = ANY(" + args.add(sc.keys) + ")" + sc.coveringBuckets(args)
		with = "WITH b AS MATERIALIZED (SELECT h.vehicle_key, min(h.id_min) AS id_lo, max(h.id_max) AS id_hi," +
			" min(h.odometer_min) AS odometer_lo, max(h.odometer_max) AS odometer_hi, min(h.speed_min) AS speed_lo, max(h.speed_max) AS speed_hi" +
			cover + " GROUP BY 1) "
		if o[0].Field == "shift_state" {
			// sv: each vehicle's shiftStateParts smallest shift states, i from 1, one descent of
			// the index each (a NULL v past its last one).
			with = "WITH RECURSIVE " + with[len("WITH "):] + ", sv (vehicle_key, v, i) AS (" +
				"SELECT k, (SELECT min(s.shift_state) FROM samples s WHERE s.vehicle_key = k), 1 FROM unnest(" + args.add(sc.keys) + "::integer[]) k" +
				" UNION ALL SELECT sv.vehicle_key, (SELECT min(s.shift_state) FROM samples s WHERE s.vehicle_key = sv.vehicle_key AND s.shift_state > sv.v), sv.i + 1" +
				" FROM sv WHERE sv.i < " + strconv.Itoa(shiftStateParts) + " AND sv.v IS NOT NULL) "
		}
	}
	var parts []string
	inRange := scope{Filter: sc.Filter} // the time range's conditions, no vehicle's
	for _, k := range sc.keys {
		key := args.add(k)
		part := func(conds ...string) {
			parts = append(parts, "(SELECT "+cols+" FROM samples s"+inRange.whereOrdered(args, o, append([]string{"s.vehicle_key = " + key}, conds...)...)+
				o.orderBy(true)+" LIMIT "+limit+")")
		}
		bound := func(col, lo, hi string) []string {
			return []string{col + " >= (SELECT " + lo + " FROM b WHERE b.vehicle_key = " + key + ")",
				col + " <= (SELECT " + hi + " FROM b WHERE b.vehicle_key = " + key + ")"}
		}
		switch {
		case !sc.HasTimeRange():
			part()
		case o[0].Field == "odometer":
			part(bound("s.odometer", "odometer_lo", "odometer_hi")...)
		case o[0].Field == "shift_state":
			// One part per shift state, each an index range bounded by the ids of the range's
			// hours: the smallest few states (sv), the rows without one, and the rest. In one
			// scan per vehicle the ids bound no index range, and with plain id bounds, whose
			// values the planner cannot know, it took the id index and sorted each vehicle's
			// range (a 20% range of ten vehicles: page 1 95-120 ms, page 1000 1.7-2.3 s). A
			// state's bounds are row comparisons, not "shift_state = v AND id >= lo": with an
			// equality the part's rows look unordered by shift_state, and each was sorted for
			// the merge (100,000 rows for page 1000 of one vehicle's range: 143-177 ms).
			value := func(i int) string {
				return "(SELECT v FROM sv WHERE sv.vehicle_key = " + key + " AND sv.i = " + strconv.Itoa(i) + ")"
			}
			lo, hi := "(SELECT id_lo FROM b WHERE b.vehicle_key = "+key+")", "(SELECT id_hi FROM b WHERE b.vehicle_key = "+key+")"
			part("s.shift_state IS NULL", "s.id >= "+lo, "s.id <= "+hi)
			for i := 1; i <= shiftStateParts; i++ {
				v := value(i)
				part("(s.shift_state, s.id) >= ("+v+", "+lo+")", "(s.shift_state, s.id) <= ("+v+", "+hi+")")
			}
			// The rest, rare in real logs, filtered by the timestamp alone.
			part("(s.shift_state, s.id) > (" + value(shiftStateParts) + ", 9223372036854775807)")
		default:
			// Not the ids for the rows with a speed: bounds unknown when planning, they made
			// the id index and a sort of the range look cheaper than the speed index (1.4 s).
			part(append([]string{"s.speed IS NULL"}, bound("s.id", "id_lo", "id_hi")...)...)
			part(append([]string{"s.speed IS NOT NULL"}, bound("s.speed", "speed_lo", "speed_hi")...)...)
		}
	}
	inner := "SELECT s.vehicle_key, s.id FROM (" + strings.Join(parts, " UNION ALL ") + ") s" + o.orderBy(true) +
		" LIMIT " + args.add(p.Size) + " OFFSET " + args.add(p.Offset())
	return with + "SELECT " + recordColumns + " FROM samples s JOIN (" + inner + ") page ON page.id = s.id AND page.vehicle_key = s.vehicle_key" +
		o.orderBy(true)
}

// speedSeekPage is a deep page ordered by -speed alone within a vehicle (and its range). The
// rows without a speed come first (PostgreSQL's NULLS FIRST), by id among themselves; they are
// counted from the hour rollups (n - speed_n) and the range's ends, so the page knows how many
// of its rows they give. Their part is reached by cutSeek's seek on ids, and the part with a
// speed skips only its own rows. Before, page 1000 of 100 of a vehicle whose speeds were 29%
// missing read and dropped 99,900 index entries without a speed (10 ms at 10M rows; 7 ms now).
func (sc scope) speedSeekPage(args *sqlArgs, o Order, p Page) string {
	k := args.add(*sc.key)
	size, off := args.add(p.Size), args.add(p.Offset())
	hours, edges := sc.wholeHours(args, k)
	nullCount := "(SELECT COALESCE(sum(h.n - h.speed_n), 0) FROM sample_hours h WHERE " + hours + ") + " + edgeCount("e.vehicle_key = "+k, edges, " AND e.speed IS NULL")
	nulls := "(SELECT n FROM counted)"
	seek, bound, rest := cutSeekOf("e.vehicle_key = "+k, "sample_hours", hours, edges, "id", true, off, "(h.n - h.speed_n)", " AND e.speed IS NULL")
	nullConds := []string{"s.speed IS NULL", bound}
	var covering string
	if sc.HasTimeRange() { // over a whole vehicle the bounds bound nothing (4 scans of its hours, 3.6 ms)
		covering = sc.coveringHours(args)
		nullConds = append(nullConds, "s.id >= (SELECT min(h.id_min)"+covering+")", "s.id <= (SELECT max(h.id_max)"+covering+")")
	}
	withoutSpeed := "(SELECT s.speed, s.id FROM samples s" + sc.whereOrdered(args, o, nullConds...) +
		o.orderBy(true) + " LIMIT GREATEST(0, LEAST(" + size + ", " + nulls + " - " + off + ")) OFFSET " + rest + ")"
	ctes := "WITH RECURSIVE counted AS (SELECT " + nullCount + " AS n), " + seek
	var withSpeed string
	if sc.HasTimeRange() {
		var walk string
		walk, withSpeed = sc.speedWalk(args, o, size, "GREATEST(0, "+off+" - "+nulls+")", covering)
		ctes += ", " + walk
	} else {
		withSpeed = "(SELECT s.speed, s.id FROM samples s" + sc.whereOrdered(args, o, "s.speed IS NOT NULL") +
			o.orderBy(true) + " LIMIT " + size + " OFFSET GREATEST(0, " + off + " - " + nulls + "))"
	}
	inner := "SELECT s.id FROM (" + withoutSpeed + " UNION ALL " + withSpeed + ") s" + o.orderBy(true) + " LIMIT " + size
	return ctes +
		" SELECT " + recordColumns + " FROM samples s JOIN (" + inner + ") page ON page.id = s.id AND s.vehicle_key = " + k + o.orderBy(true)
}

// speedWalk is the part with a speed of speedSeekPage's page within a time range, skip rows
// in: it walks the vehicle's speeds from the highest down (a descent of the index each) and
// counts each one's rows in the range until the count passes skip, then reads the page from
// there. Within one speed the index is in id order, so the ids of the hours covering the range
// bound each count to the range's stretch of the index; one scan of all the speeds read and
// dropped every row outside the range instead (page 1000 of 100 of a 20% range: 210,000
// index entries, 28-58 ms at 10M rows). It returns its CTEs and the part.
func (sc scope) speedWalk(args *sqlArgs, o Order, size, skip, covering string) (ctes, part string) {
	k := args.add(*sc.key)
	inRange := func(conds ...string) string {
		return " FROM samples s" + sc.whereOrdered(args, o, append(conds, "s.id >= (SELECT lo FROM ids)", "s.id <= (SELECT hi FROM ids)")...)
	}
	count := func(v string) string {
		return "LATERAL (SELECT count(*) AS c" + inRange("s.speed = "+v) + ") cc"
	}
	ctes = "ids AS (SELECT min(h.id_min) AS lo, max(h.id_max) AS hi" + covering + ")" +
		", speeds (v, c, cum) AS (" +
		"SELECT t.v, cc.c, cc.c FROM (SELECT max(s.speed) AS v FROM samples s WHERE s.vehicle_key = " + k + ") t, " + count("t.v") + " WHERE t.v IS NOT NULL" +
		" UNION ALL SELECT t.v, cc.c, speeds.cum + cc.c FROM speeds, LATERAL (SELECT max(s.speed) AS v FROM samples s WHERE s.vehicle_key = " + k +
		" AND s.speed < speeds.v) t, " + count("t.v") + " WHERE speeds.cum <= " + skip + " AND t.v IS NOT NULL)" +
		", target AS (SELECT v, cum - c AS before FROM speeds WHERE cum > " + skip + ")"
	at := "(SELECT s.speed, s.id" + inRange("s.speed = (SELECT v FROM target)") + o.orderBy(true) +
		" LIMIT " + size + " OFFSET " + skip + " - (SELECT before FROM target))"
	below := "(SELECT s.speed, s.id FROM samples s" + sc.whereOrdered(args, o, "s.speed < (SELECT v FROM target)") + o.orderBy(true) + " LIMIT " + size + ")"
	return ctes, at + " UNION ALL " + below
}

// boundedPage is a page ordered first by soc or elevation, which no index serves, of a vehicle
// or of up to mergeMaxVehicles vehicles (boundsVehicles). The rollups bound which rows can be
// on it, and the page is found among those by counting, not sorting.
//
//  1. The hours: a row's rank is at most the rows of the hours whose smallest value is below
//     its own, and at least the rows of the whole hours whose largest value is at most its own.
//     So the page's rows lie in a band of values [first, last], first and last read from those
//     sums (ascending; descending the mirror image). Hours wholly before the band are counted
//     (base); only the hours that overlap it go on.
//  2. Their five-minute rows narrow the band the same way, and the whole five-minute rows
//     before it are counted too (before).
//  3. The samples of the five-minute rows that overlap the band are counted per unit of value
//     (floor: soc's own values, elevation's metres), which tells which units hold the page's
//     ranks, and only the rows of those units are sorted.
//
// Ranks are found from sums, so the bands are a matter of speed, never of which rows the page
// gets: the tests compare every page with a plain sort. At 10M rows, one vehicle of ten, page
// 1000 of 100 by elevation read 127,000 rows (about 135 ms) where sorting every row the hours
// could not rule out took 480 ms; page 1 read a few hundred (8-10 ms).
func (sc scope) boundedPage(args *sqlArgs, o Order, p Page) string {
	f := o[0]
	col := orderColumns[f.Field]
	vehicles := vehiclesOf(args, sc, "h")
	offset, size, through := args.add(p.Offset()), args.add(p.Size), args.add(p.Offset()+p.Size)
	// Rollup rows wholly inside the range, and the five-minute rows that cover it.
	wholeHour, wholeFive, fives := "true", "true", ""
	if sc.From != nil {
		wholeHour = "h.bucket >= " + args.add(*ceilTo(sc.From, time.Hour))
		wholeFive = "m.bucket >= " + args.add(*ceilTo(sc.From, fiveMinutes))
		fives += " AND m.bucket >= " + args.add(*floorTo(sc.From, fiveMinutes))
	}
	if sc.To != nil {
		end := sc.To.Add(time.Microsecond)
		wholeHour += " AND h.bucket < " + args.add(*floorTo(&end, time.Hour))
		wholeFive += " AND m.bucket < " + args.add(*floorTo(&end, fiveMinutes))
		fives += " AND m.bucket <= " + args.add(*sc.To)
	}
	// Ascending: a rollup row's rows come no earlier than its floor(lo) and are all placed by
	// its ceil(hi); before(x) is a row wholly before value x, overlaps(band) one with rows in it.
	dir, early, late, startAt, endAt := "", "floor(lo)", "ceil(hi)", "'-Infinity'", "'Infinity'"
	before := func(t, x string) string { return t + ".hi < " + x }
	overlaps := func(t, b string) string { return t + ".lo <= " + b + ".last AND " + t + ".hi >= " + b + ".first" }
	inBand := col + " <= (SELECT last FROM b)"
	if f.Desc {
		dir, early, late, startAt, endAt = " DESC", "ceil(hi)", "floor(lo)", "'Infinity'", "'-Infinity'"
		before = func(t, x string) string { return t + ".lo > " + x }
		overlaps = func(t, b string) string { return t + ".hi >= " + b + ".last AND " + t + ".lo <= " + b + ".first" }
		inBand = col + " >= (SELECT last FROM b)"
	}
	// A whole five-minute row within one unit of value is counted by its n. Its rows past the
	// band's end, if any, are in the band's last unit, where a count too large changes no page:
	// a page is placed by the counts of the units before its own.
	counted := "c.whole AND floor(c.lo) = floor(c.hi)"
	// quantile is the first key k, in the page's order, at which the running count of from's
	// rollup rows (plus plus) passes rank by cmp.
	quantile := func(from, key, where, plus, cmp, rank string) string {
		return "(SELECT k FROM (SELECT k, sum(n) OVER (ORDER BY k" + dir + ") AS cum FROM (SELECT " + key + " AS k, sum(n) AS n FROM " + from + where +
			" GROUP BY 1) g) x WHERE cum" + plus + " " + cmp + " " + rank + " ORDER BY k" + dir + " LIMIT 1)"
	}
	band := func(from, plus, first, last string) string {
		return "SELECT COALESCE(" + quantile(from, early, "", plus, ">", offset) + ", " + first + ")::float8 AS first, COALESCE(" +
			quantile(from, late, " WHERE whole", plus, ">=", through) + ", " + last + ")::float8 AS last"
	}
	units := func(t string) string {
		return t + "." + f.Field + "_min::float8 AS lo, " + t + "." + f.Field + "_max::float8 AS hi"
	}
	base := "(SELECT n FROM base)"
	// The samples of candidate five-minute row c, in the range.
	samples := func(cols string, conds ...string) string {
		return "LATERAL (SELECT " + cols + " FROM samples s" + sc.whereOrdered(args, o, append([]string{"s.vehicle_key = c.vehicle_key",
			`s."timestamp" >= c.bucket`, `s."timestamp" < c.bucket + interval '5 minutes'`}, conds...)...) + " OFFSET 0) s"
	}
	// LATERAL with OFFSET 0, which PostgreSQL does not flatten: an index range per rollup row,
	// whatever the planner guesses of how few they are (as joins, it merged or sorted every
	// five-minute row of the vehicles against them: seconds).
	with := "WITH hc AS MATERIALIZED (SELECT h.vehicle_key, h.bucket, h.n, " + units("h") + ", " + wholeHour + " AS whole" +
		" FROM sample_hours h WHERE " + vehicles + sc.coveringBuckets(args) + ")" +
		", hb AS (" + band("hc", "", startAt, endAt) + ")" +
		", base AS (SELECT COALESCE(sum(hc.n), 0) AS n FROM hc, hb WHERE hc.whole AND " + before("hc", "hb.first") + ")" +
		", u AS MATERIALIZED (SELECT m.vehicle_key, m.bucket, m.n, " + units("m") + ", " + wholeFive + " AS whole FROM hc, hb," +
		" LATERAL (SELECT m.* FROM sample_five_minutes m WHERE m.vehicle_key = hc.vehicle_key AND m.bucket >= hc.bucket" +
		" AND m.bucket < hc.bucket + interval '1 hour'" + fives + " OFFSET 0) m WHERE NOT hc.whole OR " + overlaps("hc", "hb") + ")" +
		", b AS (" + band("u", " + "+base, "hb.first", "hb.last") + " FROM hb)" +
		", before AS (SELECT " + base + " + COALESCE(sum(u.n), 0) AS n FROM u, b WHERE u.whole AND " + before("u", "b.first") + ")" +
		", c AS MATERIALIZED (SELECT u.vehicle_key, u.bucket, u.n, u.lo, u.hi, u.whole FROM u, b WHERE NOT u.whole OR " + overlaps("u", "b") + ")" +
		// g: the candidates' rows up to the band's end by unit of value, in order, with the
		// ranks among them that each unit spans; kr: the units that hold the page's ranks.
		// Only the samples of the five-minute rows not counted by their n are read (of the
		// soc's, some 40%; a parked vehicle's elevations are counted).
		", g AS (SELECT k, sum(n) OVER (ORDER BY k" + dir + ") - n AS before_k, sum(n) OVER (ORDER BY k" + dir + ") AS through_k FROM (" +
		"SELECT k, sum(n) AS n FROM (SELECT floor(c.lo) AS k, c.n::bigint AS n FROM c WHERE " + counted +
		" UNION ALL SELECT floor(s.v), count(*) FROM (SELECT * FROM c WHERE NOT (" + counted + ")) c, " + samples(col+" AS v", inBand) +
		" GROUP BY 1) y GROUP BY 1) x)" +
		", r AS (SELECT " + offset + " - (SELECT n FROM before) AS r0)" +
		", kr AS (SELECT min(k) AS k0, max(k) AS k1, min(before_k) AS skipped FROM g, r WHERE through_k > r.r0 AND before_k < r.r0 + " + size + ")"
	// floor on both sides, not "< k1 + 1": past 2^53 a double plus one is itself.
	rows := samples(recordColumns, "floor("+col+") >= (SELECT k0 FROM kr)", "floor("+col+") <= (SELECT k1 FROM kr)")
	return with + " SELECT s.* FROM c, " + rows + " WHERE floor(c.lo) <= (SELECT k1 FROM kr) AND c.hi >= (SELECT k0 FROM kr)" +
		o.orderBy(true) + " LIMIT " + size + " OFFSET (SELECT r0 FROM r) - (SELECT skipped FROM kr)"
}

// columns are the distinct qualified columns o's ORDER BY names, the id included.
func (o Order) columns() string {
	var cols []string
	for _, f := range o.withID() {
		if c := orderColumns[f.Field]; !slices.Contains(cols, c) {
			cols = append(cols, c)
		}
	}
	return strings.Join(cols, ", ")
}

// selectSQL is every matching row in order o (export).
func selectSQL(sc scope, o Order) (string, []any) {
	var args sqlArgs
	return "SELECT " + recordColumns + o.from() + sc.whereOrdered(&args, o) + o.orderBy(true), args
}

// An export ordered first by soc or elevation goes out in bands of values, each sorted on its
// own (bandSQL), instead of one sort of every row, which had to end before the first row could
// leave (one vehicle of ten at 10M rows: 0.8-1.1 s to the first byte; all ten, 9 s). The first
// band holds about firstBandRows rows, so the first rows leave at once, and each next one
// bandGrowth times as many, up to rollupBands bands; the last band is the rest, read and sorted
// as before (bandSQL). The rows of the five-minute rows at the bands' edges are read by both
// bands, and an index range per five-minute row costs more than a plain scan of most rows: with
// every band but the last through the rollup (up to a 512,000-row one), an export of one
// vehicle took 2.3-2.8 s against 1.5-2.3 s for one sort (by soc and by elevation, 10M rows,
// alternating runs); with rollupBands 4 (the first 170,000 rows) 1.9-2.6 s against 1.9-2.7 s.
const (
	firstBandRows = 2000
	bandGrowth    = 4
	rollupBands   = 4
)

// bandsExport reports an export that bandSQL serves: ordered first by soc or elevation, of a
// vehicle or of up to mergeMaxVehicles vehicles, without the vehicles' join.
func (sc scope) bandsExport(o Order) bool {
	return len(o) > 0 && (o[0].Field == "soc" || o[0].Field == "elevation") && !o.needsVehicles() &&
		(sc.key != nil || len(sc.keys) > 0 && len(sc.keys) <= mergeMaxVehicles)
}

// vehiclesOf is the condition on rollup table t's rows of the scope's vehicles.
func vehiclesOf(args *sqlArgs, sc scope, t string) string {
	if sc.key != nil {
		return t + ".vehicle_key = " + args.add(*sc.key)
	}
	return t + ".vehicle_key = ANY(" + args.add(sc.keys) + ")"
}

// fiveMinuteRows is the condition on sample_five_minutes m of the rows that cover the scope.
func (sc scope) fiveMinuteRows(args *sqlArgs) string {
	conds := vehiclesOf(args, sc, "m")
	if sc.From != nil {
		conds += " AND m.bucket >= " + args.add(*floorTo(sc.From, fiveMinutes))
	}
	if sc.To != nil {
		conds += " AND m.bucket <= " + args.add(*sc.To)
	}
	return conds
}

// bandCutsSQL returns the whole numbers that cut an export in order o into bands, one row
// each, from the hour rollup: each hour's rows are taken at the floor of its value nearest the
// order's start, which only shapes the bands (every row falls into exactly one whatever the
// cuts), and makes the first smaller than asked, if anything. The five-minute rollup would
// shape them better but has twelve times the rows to read (ten vehicles at 10M samples: 187,159
// against 23,854; with it, and the first band read from it too, the first byte took 88-135 ms,
// 33-58 ms with the hours). Band i holds about first*growth^i rows (first each with growth 1).
// The rows come in band order, each the smallest whole number of its band (see bandsFrom)
// and the farthest value of its hours in o's direction (their largest ascending, smallest
// descending): no row lies beyond the farthest of all. With after (a cursor page's value),
// only the hours that reach it or beyond, in o, count.
func bandCutsSQL(sc scope, o Order, first, growth int64, after *float64) (string, []any) {
	var args sqlArgs
	f := o[0]
	key, dir, far, farthest := "floor(h."+f.Field+"_min::float8)", "", "max(h."+f.Field+"_max::float8)", "max(far)"
	if f.Desc {
		key, dir, far, farthest = "floor(h."+f.Field+"_max::float8)", " DESC", "min(h."+f.Field+"_min::float8)", "min(far)"
	}
	var reach string
	switch {
	case after != nil && f.Desc:
		reach = " AND h." + f.Field + "_min <= " + args.add(*after) + "::float8"
	case after != nil:
		reach = " AND h." + f.Field + "_max >= " + args.add(*after) + "::float8"
	}
	// The rows before a value's: before. Band i starts after first*(growth^i - 1)/(growth - 1).
	rows := args.add(first) + "::numeric"
	band := "floor(before / " + rows + ")"
	if growth > 1 {
		g := args.add(growth) + "::numeric"
		band = "floor(log(" + g + ", 1 + (" + g + " - 1) * before / " + rows + "))"
	}
	return "SELECT min(k), " + farthest + " FROM (SELECT k, far, " + band + " AS band FROM (SELECT k, far, (sum(n) OVER (ORDER BY k" + dir + ") - n)::numeric AS before" +
		" FROM (SELECT " + key + " AS k, sum(h.n) AS n, " + far + " AS far FROM sample_hours h WHERE " + vehiclesOf(&args, sc, "h") + sc.coveringBuckets(&args) + reach +
		" GROUP BY 1) g) x) y GROUP BY band ORDER BY band", args
}

// bandSQL is the rows of the export in order o whose value lies in [lo, hi). A band is read
// through the five-minute rows that reach into it (LATERAL with OFFSET 0, an index range each;
// see boundedPage); the last, the largest, is a plain scan of the scope, as fast as those
// index ranges when most rows are in it, and faster across vehicles (ten at 10M rows, in bands
// of 250,000 rows through the rollup: 24-27 s against 18 s for one sort of every row).
func bandSQL(sc scope, o Order, lo, hi float64, last bool) (string, []any) {
	var args sqlArgs
	return bandQuery(&args, sc, o, lo, hi, last), args
}

// bandQuery is bandSQL's query, of the rows that also meet conds.
func bandQuery(args *sqlArgs, sc scope, o Order, lo, hi float64, last bool, conds ...string) string {
	col := orderColumns[o[0].Field]
	l, h := args.add(lo)+"::float8", args.add(hi)+"::float8"
	inBand := append([]string{col + " >= " + l, col + " < " + h}, conds...)
	if last {
		return "SELECT " + recordColumns + " FROM samples s" + sc.whereOrdered(args, o, inBand...) + o.orderBy(true)
	}
	f := o[0].Field
	reaches := func(t string) string {
		return " AND " + t + "." + f + "_max >= " + l + " AND " + t + "." + f + "_min < " + h
	}
	// The hours that reach into the band, then their five-minute rows that do: ten vehicles'
	// 187,000 five-minute rows took 48 ms to filter for the first band, their hours 10 ms.
	return "SELECT s.* FROM (SELECT m.vehicle_key, m.bucket FROM sample_hours h, LATERAL (SELECT m.vehicle_key, m.bucket FROM sample_five_minutes m" +
		" WHERE m.vehicle_key = h.vehicle_key AND m.bucket >= h.bucket AND m.bucket < h.bucket + interval '1 hour' AND " + sc.fiveMinuteRows(args) +
		reaches("m") + " OFFSET 0) m WHERE " + vehiclesOf(args, sc, "h") + sc.coveringBuckets(args) + reaches("h") +
		") c, LATERAL (SELECT " + recordColumns + " FROM samples s" +
		sc.whereOrdered(args, o, append([]string{"s.vehicle_key = c.vehicle_key", `s."timestamp" >= c.bucket`,
			`s."timestamp" < c.bucket + interval '5 minutes'`}, inBand...)...) + " OFFSET 0) s" + o.orderBy(true)
}

// unitBandsUpTo is the widest of bandsAfter's bands of whole units.
const unitBandsUpTo = 64

// seekBandSQL is the first limit rows of band [lo, hi) after cursor c in travel order (a
// cursor page by soc or elevation: bandedSeek); "" when nothing sorts after c.
func seekBandSQL(sc scope, travel Order, c Cursor, lo, hi float64, limit int64) (string, []any) {
	var args sqlArgs
	terms := seekTerms(travel, c, args.add)
	if len(terms) == 0 {
		return "", nil
	}
	return bandQuery(&args, sc, travel, lo, hi, false, "(("+strings.Join(terms, ") OR (")+"))") + " LIMIT " + args.add(limit), args
}

// seekTieSQL is the first limit rows after cursor c (not a Before cursor) in travel order, a
// single field, that share its value v (the ties, in id order): a cursor page by soc or elevation starts
// with them (bandedSeek). Read as a band, every sample of every five-minute row that reaches
// v was read and sorted, though only those past the cursor's id come next and the page wants
// the first few of them: at the fleet's millionth row by elevation some 7,600 five-minute rows
// of the fleet reach the cursor's metre, 760,000 samples read for a page of 100 (248 ms).
// Here the five-minute rows that reach v and hold ids past the cursor's are read in id order,
// grouped into runs whose ids do not overlap the runs before (seg: a new run wherever no
// earlier row's ids reach the row's first one, as cutSeekOf's clean cuts), so that the order
// (seg, id) is the order of ids, and PostgreSQL sorts one run at a time (an incremental sort)
// and stops at the page's end: for rows in time order, a five-minute row at a time.
func seekTieSQL(sc scope, travel Order, c Cursor, v float64, limit int64) (string, []any) {
	var args sqlArgs
	f, desc := travel[0].Field, travel[0].Desc
	col := orderColumns[f]
	val, id := args.add(v)+"::float8", args.add(c.ID)
	past, order, reach, clean, dir := "id_max > "+id, "id_min", "max(id_max)", "< id_min", ""
	if desc {
		past, order, reach, clean, dir = "id_min < "+id, "id_max DESC", "min(id_min)", "> id_max", " DESC"
	}
	reaches := func(t string) string {
		return " AND " + t + "." + f + "_min <= " + val + " AND " + t + "." + f + "_max >= " + val + " AND " + t + "." + past
	}
	cands := "SELECT m.vehicle_key, m.bucket, m.id_min, m.id_max FROM sample_hours h, LATERAL (SELECT m.vehicle_key, m.bucket, m.id_min, m.id_max" +
		" FROM sample_five_minutes m WHERE m.vehicle_key = h.vehicle_key AND m.bucket >= h.bucket AND m.bucket < h.bucket + interval '1 hour' AND " +
		sc.fiveMinuteRows(&args) + reaches("m") + " OFFSET 0) m WHERE " + vehiclesOf(&args, sc, "h") + sc.coveringBuckets(&args) + reaches("h")
	runs := "SELECT vehicle_key, bucket, sum(cut) OVER (ORDER BY " + order + ") AS seg FROM (SELECT c.*, CASE WHEN " + reach +
		" OVER (ORDER BY " + order + " ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) " + clean + " THEN 1 ELSE 0 END AS cut FROM (" + cands + ") c) c"
	after := "s.id > " + id
	if desc {
		after = "s.id < " + id
	}
	rows := "LATERAL (SELECT " + recordColumns + " FROM samples s" + sc.whereOrdered(&args, travel, "s.vehicle_key = g.vehicle_key",
		`s."timestamp" >= g.bucket`, `s."timestamp" < g.bucket + interval '5 minutes'`, col+" = "+val, after) + " OFFSET 0) s"
	return "SELECT s.* FROM (" + runs + " ORDER BY seg OFFSET 0) g, " + rows + " ORDER BY g.seg, s.id" + dir + " LIMIT " + args.add(limit), args
}

// bandsAfter is the bands of a cursor page whose value is v, in travel order: withTies, the
// band that holds v, cut at v (ascending from v, descending from just above it); without, from
// just past v (its rows are seekTieSQL's). Then bands of 1, 2, 4, ... units (near v, where the
// page most often ends) and of the cuts (bandCutsSQL's rows, which jump the gaps), the last one
// open. Together they hold every value from v on (past v); none when nothing can be (past the
// largest double). The hours that reach v hold values on both sides of it, so the first cut
// past it can be far: a deep page by elevation (10M rows, one vehicle of ten) read 570 ms of
// rows without the unit bands.
func bandsAfter(cuts []float64, v float64, desc, withTies bool) [][2]float64 {
	var edges []float64
	if desc {
		top := v
		if withTies {
			top = math.Nextafter(v, math.Inf(1))
		}
		edges = append(edges, math.Inf(-1), top)
		for _, c := range cuts {
			if c > math.Inf(-1) && c <= v {
				edges = append(edges, c)
			}
		}
		for w := 0.0; w < unitBandsUpTo; w = 2*w + 1 {
			if c := math.Floor(v) - w; c <= v {
				edges = append(edges, c)
			}
		}
	} else {
		start := v
		if !withTies {
			if start = math.Nextafter(v, math.Inf(1)); math.IsInf(start, 1) {
				return nil
			}
		}
		edges = append(edges, start, math.Inf(1))
		for _, c := range cuts {
			if c > v && c < math.Inf(1) {
				edges = append(edges, c)
			}
		}
		for w := 1.0; w <= unitBandsUpTo; w *= 2 {
			if c := math.Floor(v) + w; c > v {
				edges = append(edges, c)
			}
		}
	}
	slices.Sort(edges)
	return bandsOf(slices.Compact(edges), desc)
}

// bandsOf is the bands between consecutive edges (ascending, distinct), in the order's
// direction.
func bandsOf(edges []float64, desc bool) [][2]float64 {
	bands := make([][2]float64, 0, len(edges)-1)
	for i := range len(edges) - 1 {
		bands = append(bands, [2]float64{edges[i], edges[i+1]})
	}
	if desc {
		slices.Reverse(bands)
	}
	return bands
}

// bandsFrom turns bandCutsSQL's rows into the bands' bounds, in the export's order. Whatever
// the cuts, the bands cover every value once; the smallest cut (the start of the first band
// ascending, of the last descending) is dropped: below it there is little or nothing.
func bandsFrom(cuts []float64, desc bool) [][2]float64 {
	switch {
	case len(cuts) > 0 && desc:
		cuts = cuts[:len(cuts)-1]
	case len(cuts) > 0:
		cuts = cuts[1:]
	}
	slices.Sort(cuts)
	return bandsOf(append(append([]float64{math.Inf(-1)}, slices.Compact(cuts)...), math.Inf(1)), desc)
}

// deferredFrom is where an OFFSET starts paying for its rows: past it, the skipped rows are
// found by an index-only scan of the ids (every index the orderings use carries id), and only
// the page's rows are fetched from the table.
const deferredFrom = 1000

// seekFrom is where a deep page of one vehicle starts to seek from the hour rollup (hourSeek,
// cutSeek, speedSeekPage) instead of skipping index entries. A seek folds the running sums of
// the hours it may start in, a few milliseconds whatever the page; a skip costs about 0.16 us
// an entry. EXPLAIN ANALYZE at 10M rows, one vehicle's 2,372 hours: page 50 of 100 by
// odometer 6.0 ms seeking, 1.0 ms skipping; page 1000 of 10 by -speed 8.3 and 2.0 ms; page
// 1000 of 100 by odometer 5.2 and 16.3 ms.
const seekFrom = 30000

// pageOrderBy is o's ORDER BY for a page by offset. Within one vehicle, timestamps are unique
// (the primary key is (vehicle_key, timestamp)), so an order starting with the timestamp needs
// nothing after it: the rest and the id tie-break change no row's place, and leaving them out
// spares PostgreSQL an incremental sort of every row an OFFSET skips (page 1000 of 100 at 10M
// rows: 40 ms with it, 25 ms without, EXPLAIN ANALYZE).
func (o Order) pageOrderBy(sc scope) string {
	if sc.key == nil || len(o) == 0 || o[0].Field != "timestamp" {
		return o.orderBy(true)
	}
	if o[0].Desc {
		return ` ORDER BY s."timestamp" DESC`
	}
	return ` ORDER BY s."timestamp"`
}

// sortsAll reports a list page that no index or rollup serves, following pageSQL's and
// seekSQL's cases: PostgreSQL reads and sorts every matching row, for up to seconds at 10M rows
// (README, "Performance"). Such pages run on the store's sort pool. Without a vehicle filter,
// speed, odometer and shift_state alone count as served (mergedPage, statePage), as do cursor
// pages by soc or elevation (bandedSeek), which past mergeMaxVehicles vehicles they are not;
// they then sort on the short requests' pool.
func sortsAll(f Filter, o Order, p Page, cursor bool) bool {
	if f.VehicleID != nil {
		o = o.forScope(scope{Filter: f})
	}
	if len(o) == 0 {
		return false // the default order: by timestamp
	}
	switch first := o[0].Field; {
	case first == "shift_state":
		// Alone, sample_hour_states serves it (statePage, stateSeek), or its optional index.
		return len(o) > 1
	case first == "timestamp" || first == "id":
		return false
	case f.VehicleID == nil && first == "vehicle_id":
		// vehiclePage and vehicleSeek: each vehicle's rows as its own page in the rest of the
		// order, the first one after a cursor.
		one := "" // any vehicle
		return sortsAll(Filter{VehicleID: &one, From: f.From, To: f.To}, o, p, cursor)
	case f.VehicleID == nil && cursor && (first == "soc" || first == "elevation") && !o.needsVehicles():
		return false // bandedSeek, up to mergeMaxVehicles vehicles, as a merged page
	case f.VehicleID == nil:
		return !(len(o) == 1 && (first == "speed" || first == "odometer"))
	case first == "soc" || first == "elevation":
		// A page by soc or elevation reads the samples the rollups cannot rule out
		// (boundedPage): hundreds for an early page, a tenth of the vehicle's or so for page
		// 1000 of 100 (about 130 ms at 10M rows); after a cursor, the band of the cursor's
		// value and the next (bandedSeek).
		return !cursor && p.Offset() >= deferredFrom
	}
	return false // speed and odometer within a vehicle: their indexes
}

// pageSQL is one page by offset; a vehicle's page from offset seek on seeks (seekFrom but
// for tests).
func pageSQL(sc scope, o Order, p Page, seek int64) (string, []any) {
	var args sqlArgs
	// Ascending, the rows without a speed come last, where few pages go: the plain scan of the
	// rows with one is as fast there (13 ms for page 1000 of 100, 19 ms this way).
	if sc.key != nil && len(o) == 1 && o[0].Field == "speed" && o[0].Desc && p.Offset() >= seek && sc.hasWholeHour() {
		return sc.speedSeekPage(&args, o, p), args
	}
	if sc.mergesVehicles(o) {
		return sc.mergedPage(&args, o, p), args
	}
	if sc.splitsShiftState(o) {
		one := scope{Filter: sc.Filter, keys: []int32{*sc.key}, shiftIndex: true}
		return one.mergedPage(&args, o, p), args
	}
	if sc.splitsSpeed(o) {
		limit := args.add(p.Offset() + p.Size)
		if p.Offset() < deferredFrom {
			return "SELECT " + recordColumns + sc.speedParts(&args, o, recordColumns, limit) + o.orderBy(true) +
				" LIMIT " + args.add(p.Size) + " OFFSET " + args.add(p.Offset()), args
		}
		inner := "SELECT s.id" + sc.speedParts(&args, o, o.columns(), limit) + o.orderBy(true) +
			" LIMIT " + args.add(p.Size) + " OFFSET " + args.add(p.Offset())
		return "SELECT " + recordColumns + " FROM samples s JOIN (" + inner + ") page ON page.id = s.id AND s.vehicle_key = " +
			args.add(*sc.key) + o.orderBy(true), args
	}
	if sc.key != nil && len(o) > 0 && (o[0].Field == "soc" || o[0].Field == "elevation") || sc.boundsVehicles(o) {
		return sc.boundedPage(&args, o, p), args
	}
	if p.Offset() < deferredFrom {
		sql := "SELECT " + recordColumns + o.from() + sc.whereOrdered(&args, o) + o.pageOrderBy(sc)
		return sql + " LIMIT " + args.add(p.Size) + " OFFSET " + args.add(p.Offset()), args
	}
	with, offset, extra := "", args.add(p.Offset()), []string(nil)
	if sc.key != nil && len(o) > 0 && p.Offset() >= seek {
		var bound string
		switch o[0].Field {
		case "timestamp":
			with, bound, offset = sc.hourSeek(&args, o[0].Desc, offset)
		case "odometer", "id":
			with, bound, offset = sc.cutSeek(&args, o[0].Field, o[0].Desc, offset)
		}
		if bound != "" {
			extra = append(extra, bound)
		}
	}
	inner := "SELECT s.id" + o.from() + sc.whereOrdered(&args, o, extra...) + o.pageOrderBy(sc) +
		" LIMIT " + args.add(p.Size) + " OFFSET " + offset
	from := " FROM samples s JOIN (" + inner + ") page ON page.id = s.id"
	if sc.key != nil {
		// Redundant here, but on Citus it keeps the outer lookup on the vehicle's shard
		// instead of asking every shard for the ids (docs/scaling.md).
		from += " AND s.vehicle_key = " + args.add(*sc.key)
	}
	if o.needsVehicles() {
		from += " JOIN vehicles v ON v.vehicle_key = s.vehicle_key"
	}
	return with + "SELECT " + recordColumns + from + o.pageOrderBy(sc), args
}

// hourSeek turns a deep OFFSET in a vehicle's timestamp order into a seek: the hour rollup's
// counts, summed in travel order, give the last hour that starts within offset rows of the
// range's start, so the index scan begins at that hour and skips only the rows of the hours
// before it that the sums did not account for (at most the hour's own and one ragged edge of
// the range, counted from the primary key). Without it, page 1000 of 100 read and dropped
// 99,900 index entries (20 ms at 10M rows). The rows are the same: the order is the
// timestamp's alone, unique within a vehicle. It returns a WITH clause, the condition that
// starts the scan and the OFFSET that is left.
func (sc scope) hourSeek(args *sqlArgs, desc bool, offset string) (with, bound, rest string) {
	k := args.add(*sc.key)
	var (
		hours = "h.vehicle_key = " + k
		edge  = "0"
		order = "h.bucket"
		pick  = " ORDER BY bucket DESC LIMIT 1"
	)
	if !desc {
		// Whole hours from the first one that starts in the range; the rows before it are the edge.
		if sc.From != nil {
			h0 := ceilTo(sc.From, time.Hour)
			hours += " AND h.bucket >= " + args.add(*h0)
			if h0.After(*sc.From) {
				edge = edgeCount("e.vehicle_key = "+k, []string{` AND e."timestamp" >= ` + args.add(*sc.From) + ` AND e."timestamp" < ` + args.add(*h0)}, "")
			}
		}
		if sc.To != nil {
			hours += " AND h.bucket <= " + args.add(*sc.To)
		}
		bound = `s."timestamp" >= COALESCE((SELECT bucket FROM seek), '-infinity')`
	} else {
		if sc.To != nil {
			end := sc.To.Add(time.Microsecond)
			h1 := floorTo(&end, time.Hour) // where the range's last whole hour ends
			hours += " AND h.bucket < " + args.add(*h1)
			edge = edgeCount("e.vehicle_key = "+k, []string{` AND e."timestamp" >= ` + args.add(*h1) + ` AND e."timestamp" <= ` + args.add(*sc.To)}, "")
		}
		if sc.From != nil {
			hours += " AND h.bucket >= " + args.add(*floorTo(sc.From, time.Hour))
		}
		order += " DESC"
		pick = " ORDER BY bucket LIMIT 1"
		bound = `s."timestamp" < COALESCE((SELECT bucket FROM seek) + interval '1 hour', 'infinity')`
	}
	// before: the range's rows that come ahead of the hour in travel order.
	with = "WITH seek AS (SELECT bucket, before FROM (SELECT h.bucket, sum(h.n) OVER (ORDER BY " + order + ") - h.n + " + edge +
		" AS before FROM sample_hours h WHERE " + hours + ") hrs WHERE before <= " + offset + pick + ") "
	return with, bound, offset + " - COALESCE((SELECT before FROM seek), 0)"
}

// seekSQL is the page after (or, for a Before cursor, before) c: limit rows in travel order,
// which for Before is o reversed; the caller turns them around.
func seekSQL(sc scope, o Order, c Cursor, limit int64) (string, []any) {
	var args sqlArgs
	travel := o
	if c.Before {
		travel = o.reversed()
	}
	terms := seekTerms(travel, c, args.add)
	if len(terms) == 0 {
		return "", nil // nothing sorts after the cursor's row
	}
	// Every vehicle's part on its own, merged, where its index is in the order (mergedPage).
	scopes := []scope{sc}
	if sc.mergesVehicles(travel) {
		scopes = make([]scope, len(sc.keys))
		for i := range sc.keys {
			scopes[i] = scope{Filter: sc.Filter, key: &sc.keys[i], shiftIndex: sc.shiftIndex}
		}
	}
	if len(terms) == 1 && len(scopes) == 1 {
		return "SELECT " + recordColumns + travel.from() + sc.whereOrdered(&args, travel, terms[0]) + travel.orderBy(true) + " LIMIT " + args.add(limit), args
	}
	cols := recordColumns
	if travel.needsVehicles() {
		cols += ", v.vehicle_id"
	}
	var parts []string
	for _, one := range scopes {
		for _, t := range terms {
			parts = append(parts, "(SELECT "+cols+travel.from()+one.whereOrdered(&args, travel, t)+travel.orderBy(true)+" LIMIT "+args.add(limit)+")")
		}
	}
	outer := strings.ReplaceAll(recordColumns, "s.", "")
	return "SELECT " + outer + " FROM (" + strings.Join(parts, " UNION ALL ") + ") s" + travel.orderBy(false) + " LIMIT " + args.add(limit), args
}

// span is the half-open time range [lo, hi); nil is unbounded.
type span struct{ lo, hi *time.Time }

// cover splits [from, to] (inclusive, nil for unbounded) into the pieces that each level
// answers exactly: whole UTC hours from sample_hours, whole five minutes from
// sample_five_minutes and the ragged ends from the samples (under five minutes each).
// maxLevel says how coarse a level may be used: series buckets of 5 to 30 minutes stop at five
// minutes.
type cover struct{ raw, fives, hours []span }

const (
	levelRaw = iota
	levelFives
	levelHours
)

const fiveMinutes = 5 * time.Minute

func coverRange(from, to *time.Time, maxLevel int) cover {
	var c cover
	lo := from
	var hi *time.Time
	if to != nil {
		e := to.Add(time.Microsecond) // inclusive to half-open: timestamps are whole microseconds
		hi = &e
	}
	if maxLevel == levelRaw {
		c.raw = []span{{lo, hi}}
		return c
	}
	loF, hiF := ceilTo(lo, fiveMinutes), floorTo(hi, fiveMinutes)
	if loF != nil && hiF != nil && !loF.Before(*hiF) { // no whole five minutes inside
		c.raw = []span{{lo, hi}}
		return c
	}
	if lo != nil && lo.Before(*loF) {
		c.raw = append(c.raw, span{lo, loF})
	}
	if hi != nil && hiF.Before(*hi) {
		c.raw = append(c.raw, span{hiF, hi})
	}
	if maxLevel == levelFives {
		c.fives = []span{{loF, hiF}}
		return c
	}
	loH, hiH := ceilTo(loF, time.Hour), floorTo(hiF, time.Hour)
	if loH != nil && hiH != nil && !loH.Before(*hiH) { // no whole hour inside
		c.fives = []span{{loF, hiF}}
		return c
	}
	if loF != nil && loF.Before(*loH) {
		c.fives = append(c.fives, span{loF, loH})
	}
	if hiF != nil && hiH.Before(*hiF) {
		c.fives = append(c.fives, span{hiH, hiF})
	}
	c.hours = []span{{loH, hiH}}
	return c
}

// Truncate works in absolute time from year 1, whose minutes and hours are UTC's.
func floorTo(t *time.Time, d time.Duration) *time.Time {
	if t == nil {
		return nil
	}
	v := t.Truncate(d)
	return &v
}

func ceilTo(t *time.Time, d time.Duration) *time.Time {
	if t == nil {
		return nil
	}
	v := t.Truncate(d)
	if v.Before(*t) {
		v = v.Add(d)
	}
	return &v
}

func (s span) conds(col string, args *sqlArgs) string {
	var out string
	if s.lo != nil {
		out += " AND " + col + " >= " + args.add(*s.lo)
	}
	if s.hi != nil {
		out += " AND " + col + " < " + args.add(*s.hi)
	}
	return out
}

// countSQL counts the samples in [sc.From, sc.To] of the vehicles in direct from the rollups
// (see countTerm), and, of the vehicles in outside, the rows before and after the range, with a
// minus: the caller adds their record counts. A range that holds most of a vehicle's span
// reads the rollups of what it leaves out, which is the smaller part (a range of all but the
// first hours of ten 1M-row vehicles: 5.9 ms through the rollups inside it).
func countSQL(sc scope, direct, outside []int32) (string, []any) {
	var (
		args  sqlArgs
		terms = []string{"0"}
	)
	if len(direct) > 0 {
		terms = append(terms, "+ "+countTerm(&args, direct, sc.From, sc.To))
	}
	if len(outside) > 0 && sc.From != nil {
		before := sc.From.Add(-time.Microsecond) // timestamps are whole microseconds
		terms = append(terms, "- "+countTerm(&args, outside, nil, &before))
	}
	if len(outside) > 0 && sc.To != nil {
		after := sc.To.Add(time.Microsecond)
		terms = append(terms, "- "+countTerm(&args, outside, &after, nil))
	}
	return "SELECT (" + strings.Join(terms, " ") + ")::bigint", args
}

// countTerm counts the samples of keys in [from, to] from the rollups: whole hours, then whole
// five minutes, then the samples of the two ragged ends (under five minutes each) through the
// primary key. At most a few dozen rollup rows per vehicle and day of the range, and ten
// minutes of samples.
func countTerm(args *sqlArgs, keys []int32, from, to *time.Time) string {
	var (
		parts []string
		k     = args.add(keys)
		c     = coverRange(from, to, levelHours)
	)
	for _, s := range c.hours {
		parts = append(parts, "(SELECT COALESCE(sum(n), 0) FROM sample_hours WHERE vehicle_key = ANY("+k+")"+s.conds("bucket", args)+")")
	}
	for _, s := range c.fives {
		parts = append(parts, "(SELECT COALESCE(sum(n), 0) FROM sample_five_minutes WHERE vehicle_key = ANY("+k+")"+s.conds("bucket", args)+")")
	}
	for _, s := range c.raw {
		parts = append(parts, `(SELECT count(*) FROM samples WHERE vehicle_key = ANY(`+k+`)`+s.conds(`"timestamp"`, args)+")")
	}
	return "(" + strings.Join(parts, " + ") + ")"
}

// cutSeek turns a deep OFFSET in a vehicle's odometer or id order into a seek, as hourSeek
// does for the timestamp, from the smallest and largest value of col the hour rollup keeps. A
// value v is a clean cut when no whole hour of the range has values both below v and at or
// above it: then the rows below v are exactly those of the hours whose smallest value is below
// v, plus the rows below v of the range's ragged edges (at most an hour at each end, counted
// from the table). The odometer grows with time, and so do the ids of one vehicle's uploads,
// so nearly every hour's smallest value is a clean cut; the seek takes the last one that leaves
// rows to skip, and is still exact, only slower, where the values go back. It returns a WITH
// clause, the condition that starts the scan and the OFFSET that is left.
func (sc scope) cutSeek(args *sqlArgs, col string, desc bool, offset string) (with, bound, rest string) {
	k := args.add(*sc.key)
	hours, edges := sc.wholeHours(args, k)
	with, bound, rest = cutSeekOf("e.vehicle_key = "+k, "sample_hours", hours, edges, col, desc, offset, "n", "")
	return "WITH " + with + " ", bound, rest
}

// wholeHours is the condition on sample_hours h that selects the whole hours of the scope's
// range (a vehicle's, of key k), and the conditions on samples e of its ragged ends. For a
// range without a whole hour inside (see hasWholeHour) the ends overlap.
func (sc scope) wholeHours(args *sqlArgs, k string) (hours string, edges []string) {
	hours, edges = sc.rangeHours(args)
	return "h.vehicle_key = " + k + hours, edges
}

// rangeHours is wholeHours without the vehicle: conditions on h's buckets, each after an AND.
func (sc scope) rangeHours(args *sqlArgs) (hours string, edges []string) {
	if sc.From != nil {
		h0 := ceilTo(sc.From, time.Hour)
		hours += " AND h.bucket >= " + args.add(*h0)
		if h0.After(*sc.From) {
			edges = append(edges, ` AND e."timestamp" >= `+args.add(*sc.From)+` AND e."timestamp" < `+args.add(*h0))
		}
	}
	if sc.To != nil {
		end := sc.To.Add(time.Microsecond)
		h1 := floorTo(&end, time.Hour)
		hours += " AND h.bucket < " + args.add(*h1)
		if h1.Before(end) {
			edges = append(edges, ` AND e."timestamp" >= `+args.add(*h1)+` AND e."timestamp" <= `+args.add(*sc.To))
		}
	}
	return hours, edges
}

// hasWholeHour reports whether the scope's range holds a whole UTC hour (or is unbounded).
func (sc scope) hasWholeHour() bool {
	if sc.From == nil || sc.To == nil {
		return true
	}
	end := sc.To.Add(time.Microsecond)
	return !ceilTo(sc.From, time.Hour).After(*floorTo(&end, time.Hour))
}

// edgeCount counts the rows of samples e that veh keeps (its vehicles) in the ragged ends that
// match cond.
func edgeCount(veh string, edges []string, cond string) string {
	if len(edges) == 0 {
		return "0"
	}
	parts := make([]string, len(edges))
	for i, e := range edges {
		parts[i] = "(SELECT count(*) FROM samples e WHERE " + veh + e + cond + ")"
	}
	return "(" + strings.Join(parts, " + ") + ")"
}

// cutSeekOf is cutSeek's CTE "seek" among the rows that only (conditions on samples e) keeps,
// count being how many of an hour's rows it keeps: the hours are table h's rows (sample_hours,
// or sample_hour_states for one shift state) that hours selects, the edges samples e's that veh
// keeps.
func cutSeekOf(veh, table, hours string, edges []string, col string, desc bool, offset, count, only string) (cte, bound, rest string) {
	// Ascending, v is an hour's smallest value and "before" the rows of the hours wholly below
	// it; reach is the highest value of those hours, below v for a clean cut. Descending, the
	// mirror image. The hours are grouped by v first: a frame that excluded a row's peers would
	// be aggregated anew for every row (266 ms for a vehicle's 2,361 hours).
	lowest, highest := "'-infinity'", "'infinity'" // a bound that bounds nothing, for no cut
	if col == "id" {
		lowest, highest = "0", "9223372036854775807" // ids are positive bigints
	}
	v, top, order, reach, clean, pick, below, inf := col+"_min", col+"_max", "v", "max", "reach < v", " ORDER BY v DESC LIMIT 1", "<", lowest
	if desc {
		v, top, order, reach, clean, pick, below, inf = col+"_max", col+"_min", "v DESC", "min", "reach > v", " ORDER BY v LIMIT 1", ">", highest
	}
	// float8 sums: a window's sum of bigints is a numeric, several times slower to add up.
	g := "SELECT " + v + " AS v, sum(" + count + ")::float8 AS n, " + reach + "(" + top + ") AS top FROM " + table + " h WHERE " + hours + " GROUP BY 1"
	if col == "id" {
		// Every id is one row's, in one hour: no two hours share a smallest or largest id, and
		// there is nothing to group (2 of the 8 ms of a vehicle's 2,372 hours).
		g = "SELECT " + v + " AS v, (" + count + ")::float8 AS n, " + top + " AS top FROM " + table + " h WHERE " + hours
	}
	cte = "seek AS (SELECT v, before FROM (SELECT v, (sum(n) OVER w - n)::bigint AS before, " + reach + "(top) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS reach" +
		" FROM (" + g + ") g" +
		" WINDOW w AS (ORDER BY " + order + ")) cuts" +
		" WHERE (reach IS NULL OR " + clean + ") AND before + " + edgeCount(veh, edges, only) + " <= " + offset + pick + ")"
	if desc {
		bound = "s." + col + " <= COALESCE((SELECT v FROM seek), " + inf + ")"
	} else {
		bound = "s." + col + " >= COALESCE((SELECT v FROM seek), " + inf + ")"
	}
	skipped := "(SELECT before + " + edgeCount(veh, edges, only+" AND e."+col+" "+below+" seek.v") + " FROM seek)"
	return cte, bound, offset + " - COALESCE(" + skipped + ", 0)"
}

// stateSeekFrom is the offset into one shift state's rows from which statePartSQL seeks from
// sample_hour_states' id bounds (cutSeekOf) instead of skipping: each skipped row is a
// fetch from the table, to read its state.
const stateSeekFrom = 1000

// servesStates reports a page ordered by shift_state alone, of a vehicle or of up to
// mergeMaxVehicles, without the optional index: statePage and stateSeek serve it from
// sample_hour_states.
func (sc scope) servesStates(o Order) bool {
	return !sc.shiftIndex && len(o) == 1 && o[0].Field == "shift_state" &&
		(sc.key != nil || sc.VehicleID == nil && len(sc.keys) > 0 && len(sc.keys) <= mergeMaxVehicles)
}

// stateVehicles is the test of a vehicle_key that keeps the scope's vehicles, to follow a
// column: one parameter, however many tables it is asked of.
func (sc scope) stateVehicles(args *sqlArgs) string {
	if sc.key != nil {
		return " = " + args.add(*sc.key)
	}
	return " = ANY(" + args.add(sc.keys) + ")"
}

// stateHours is the condition on sample_hour_states h that selects the whole hours of the
// scope's range, each after an AND, and the conditions on samples e of the rest of it: its
// ragged ends, or the whole range when no whole hour is inside.
func (sc scope) stateHours(args *sqlArgs) (hours string, edges []string) {
	if !sc.hasWholeHour() {
		return " AND false", []string{` AND e."timestamp" >= ` + args.add(*sc.From) + ` AND e."timestamp" <= ` + args.add(*sc.To)}
	}
	return sc.rangeHours(args)
}

// stateValue is the test of a shift_state that it is v (nil: none), to follow the column.
func stateValue(args *sqlArgs, v *string) string {
	if v == nil {
		return " IS NULL"
	}
	return " = " + args.add(*v)
}

// stateTotalsSQL counts the scope's rows of each shift state and vehicle, with the smallest
// and largest of their ids, in shift_state order (descending: desc, nulls first as ORDER BY
// has them): the whole hours' from sample_hour_states, the ragged ends' from the samples.
// With from set, only the states from *from on in that order (a nil *from: no state).
func stateTotalsSQL(sc scope, desc bool, from **string) (string, []any) {
	var args sqlArgs
	hours, edges := sc.stateHours(&args)
	veh := sc.stateVehicles(&args)
	parts := []string{"SELECT h.shift_state, h.vehicle_key, h.n, h.id_min AS lo, h.id_max AS hi FROM sample_hour_states h WHERE h.vehicle_key" +
		veh + hours}
	for _, e := range edges {
		parts = append(parts, "SELECT e.shift_state, e.vehicle_key, count(*), min(e.id), max(e.id) FROM samples e WHERE e.vehicle_key"+
			veh+e+" GROUP BY 1, 2")
	}
	where, order := "", " ORDER BY 1, 2"
	if desc {
		order = " ORDER BY 1 DESC, 2"
	}
	switch {
	case from == nil:
	case *from == nil && !desc: // no state sorts last
		where = " WHERE x.shift_state IS NULL"
	case *from == nil: // and first: every state follows
	case desc:
		where = " WHERE x.shift_state <= " + args.add(**from)
	default:
		where = " WHERE (x.shift_state >= " + args.add(**from) + " OR x.shift_state IS NULL)"
	}
	return "SELECT x.shift_state, x.vehicle_key, sum(x.n)::bigint, min(x.lo), max(x.hi) FROM (" + strings.Join(parts, " UNION ALL ") + ") x" +
		where + " GROUP BY 1, 2" + order, args
}

// statePartSQL is take rows of one shift state's part of a page (st: its rows per vehicle),
// skip rows into it, or after the row with id after (nil: from its start), in id order
// (desc: descending): an ordered scan of the id index per vehicle, bounded by the ids of the
// state's rows in the scope, merged. Deep into the state (skip from seek, stateSeekFrom but
// for tests) the scans start at the last clean cut of the state's hours that does not pass
// skip (cutSeekOf), and skip only the rows after it.
func statePartSQL(sc scope, desc bool, st stateRows, skip, take int64, after *int64, seek int64) (string, []any) {
	var (
		args  sqlArgs
		with  string
		conds []string
		rest  = args.add(skip)
	)
	if after != nil {
		if desc {
			conds = append(conds, "s.id < "+args.add(*after))
		} else {
			conds = append(conds, "s.id > "+args.add(*after))
		}
	}
	if skip >= seek {
		hours, edges := sc.stateHours(&args)
		veh, state := sc.stateVehicles(&args), stateValue(&args, st.state)
		var bound string
		with, bound, rest = cutSeekOf("e.vehicle_key"+veh, "sample_hour_states", "h.vehicle_key"+veh+" AND h.shift_state"+state+hours, edges,
			"id", desc, rest, "n", " AND e.shift_state"+state)
		with = "WITH " + with + " "
		conds = append(conds, bound)
	}
	order := " ORDER BY s.id"
	if desc {
		order += " DESC"
	}
	inRange := scope{Filter: sc.Filter}
	parts := make([]string, 0, len(st.parts))
	state := stateValue(&args, st.state)
	for _, v := range st.parts {
		c := append([]string{"s.vehicle_key = " + args.add(v.key), "s.shift_state" + state,
			"s.id >= " + args.add(v.lo), "s.id <= " + args.add(v.hi)}, conds...)
		parts = append(parts, "SELECT "+recordColumns+" FROM samples s"+inRange.whereOrdered(&args, nil, c...)+order)
	}
	page := " LIMIT " + args.add(take) + " OFFSET " + rest
	if len(parts) == 1 {
		return with + parts[0] + page, args
	}
	// Each part cut at the most rows the page can need of it, so that the parts stay ordered
	// scans a Merge Append reads only as far as the page goes.
	limit := " LIMIT " + args.add(skip+take)
	for i := range parts {
		parts[i] = "(" + parts[i] + limit + ")"
	}
	return with + "SELECT " + strings.ReplaceAll(recordColumns, "s.", "") + " FROM (" + strings.Join(parts, " UNION ALL ") + ") s" +
		strings.ReplaceAll(order, "s.", "") + page, args
}
