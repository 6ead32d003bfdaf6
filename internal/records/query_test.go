package records

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vehicle-data/vehicle-data/internal/apperr"
)

func TestParseOrdering(t *testing.T) {
	tests := []struct {
		in      string
		want    string // orderString(got)
		orderBy string
		wantErr string
	}{
		{in: "", want: "timestamp", orderBy: ` ORDER BY "timestamp", id`},
		{in: "  ", want: "timestamp", orderBy: ` ORDER BY "timestamp", id`},
		{in: "timestamp", want: "timestamp", orderBy: ` ORDER BY "timestamp", id`},
		{in: "-timestamp", want: "-timestamp", orderBy: ` ORDER BY "timestamp" DESC, id DESC`},
		{in: "vehicle_id,-timestamp", want: "vehicle_id,-timestamp", orderBy: ` ORDER BY vehicle_id, "timestamp" DESC, id DESC`},
		{in: " soc , -speed ", want: "soc,-speed", orderBy: ` ORDER BY soc, speed DESC, id DESC`},
		{in: "-id", want: "-id", orderBy: ` ORDER BY id DESC`},
		{in: "id,soc", want: "id,soc", orderBy: ` ORDER BY id`}, // nothing sorts after the unique id
		{in: "shift_state,odometer,elevation", want: "shift_state,odometer,elevation", orderBy: ` ORDER BY shift_state, odometer, elevation, id`},
		{in: "bogus", wantErr: `unknown field "bogus"`},
		{in: "Timestamp", wantErr: "unknown field"},
		{in: "timestamp,", wantErr: "empty field"},
		{in: "-", wantErr: "empty field"},
		{in: "--timestamp", wantErr: "unknown field"},
		{in: "+timestamp", wantErr: "unknown field"},
		{in: "soc,soc", wantErr: "named twice"},
		{in: "soc,-soc", wantErr: "named twice"},
		{in: `"timestamp"`, wantErr: "unknown field"},
		{in: "id; DROP TABLE vehicle_data", wantErr: "unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseOrdering(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got err %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if orderString(got) != tt.want {
				t.Errorf("got %q, want %q", orderString(got), tt.want)
			}
			if ob := got.orderBy(false); ob != tt.orderBy {
				t.Errorf("ORDER BY: got %q, want %q", ob, tt.orderBy)
			}
		})
	}
}

// FuzzParseOrdering checks that whatever is accepted renders only whitelisted SQL.
func FuzzParseOrdering(f *testing.F) {
	for _, s := range []string{"", "timestamp", "-soc,id", "a,b", "--x", " -speed , vehicle_id "} {
		f.Add(s)
	}
	allowed := map[string]bool{}
	for _, col := range orderColumns {
		allowed[col] = true
	}
	f.Fuzz(func(t *testing.T, s string) {
		o, err := ParseOrdering(s)
		if err != nil {
			return
		}
		ob := strings.TrimPrefix(o.orderBy(true), " ORDER BY ")
		for _, term := range strings.Split(ob, ", ") {
			col := strings.TrimSuffix(term, " DESC")
			if !allowed[col] {
				t.Fatalf("ParseOrdering(%q) renders %q, not a whitelisted column", s, term)
			}
		}
		again, err := ParseOrdering(orderString(o))
		if err != nil || orderString(again) != orderString(o) {
			t.Fatalf("round trip of %q: %q, %v", s, orderString(again), err)
		}
	})
}

func TestParsePage(t *testing.T) {
	i32 := func(v int32) *int32 { return &v }
	tests := []struct {
		name       string
		number     *int32
		size       *int32
		want       Page
		wantFields []string
	}{
		{"defaults", nil, nil, Page{Number: 1, Size: 10}, nil},
		{"given", i32(3), i32(25), Page{Number: 3, Size: 25}, nil},
		{"clamped", i32(1), i32(101), Page{Number: 1, Size: 100}, nil},
		{"max", nil, i32(100), Page{Number: 1, Size: 100}, nil},
		{"page zero", i32(0), nil, Page{Number: 1, Size: 10}, []string{"page"}},
		{"negative size", nil, i32(-4), Page{Number: 1, Size: 10}, []string{"page_size"}},
		{"both bad", i32(-1), i32(0), Page{Number: 1, Size: 10}, []string{"page", "page_size"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, errs := ParsePage(tt.number, tt.size)
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if names := fields(errs); !slices.Equal(names, tt.wantFields) {
				t.Errorf("errors: got %v, want %v", names, tt.wantFields)
			}
		})
	}
	if off := (Page{Number: 3, Size: 10}).Offset(); off != 20 {
		t.Errorf("offset of page 3 of 10: got %d, want 20", off)
	}
}

func fields(errs []apperr.FieldError) []string {
	var out []string
	for _, e := range errs {
		out = append(out, e.Field)
	}
	return out
}

func TestParseFilter(t *testing.T) {
	s := func(v string) *string { return &v }
	berlin, _ := time.LoadLocation("Europe/Berlin")
	tests := []struct {
		name       string
		in         FilterInput
		from, to   time.Time
		vehicle    string
		wantFields []string
	}{
		{name: "empty", in: FilterInput{}},
		{name: "empty strings are no filter", in: FilterInput{VehicleID: s(""), InitialTimestamp: s(""), Timezone: s("")}},
		{name: "vehicle", in: FilterInput{VehicleID: s("veh 1")}, vehicle: "veh 1"},
		{name: "rfc3339 utc", in: FilterInput{InitialTimestamp: s("2024-06-01T12:00:00Z")}, from: time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)},
		{name: "plus as space", in: FilterInput{FinalTimestamp: s("2024-06-01T14:00:00 02:00")}, to: time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)},
		{name: "timezone applies without offset", in: FilterInput{InitialTimestamp: s("2024-06-01 14:00:00"), Timezone: s("Europe/Berlin")}, from: time.Date(2024, 6, 1, 14, 0, 0, 0, berlin)},
		{name: "timezone for a bare date", in: FilterInput{FinalTimestamp: s("2024-01-15"), Timezone: s("Europe/Berlin")}, to: time.Date(2024, 1, 15, 0, 0, 0, 0, berlin)},
		{name: "equal bounds", in: FilterInput{InitialTimestamp: s("2024-06-01"), FinalTimestamp: s("2024-06-01T00:00:00Z")}, from: time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC), to: time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)},
		{name: "initial after final", in: FilterInput{InitialTimestamp: s("2024-06-02"), FinalTimestamp: s("2024-06-01")}, wantFields: []string{"initial_timestamp"}},
		{name: "bad timestamp", in: FilterInput{InitialTimestamp: s("June 1st")}, wantFields: []string{"initial_timestamp"}},
		{name: "bad timezone", in: FilterInput{Timezone: s("Nowhere/City"), FinalTimestamp: s("2024-06-01")}, wantFields: []string{"timezone"}, to: time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)},
		{name: "vehicle too long", in: FilterInput{VehicleID: s(strings.Repeat("x", 101))}, wantFields: []string{"vehicle_id"}},
		{name: "all bad", in: FilterInput{VehicleID: s("\x00"), InitialTimestamp: s("x"), FinalTimestamp: s("y"), Timezone: s("z")}, wantFields: []string{"vehicle_id", "timezone", "initial_timestamp", "final_timestamp"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, errs := ParseFilter(tt.in)
			if names := fields(errs); !slices.Equal(names, tt.wantFields) {
				t.Fatalf("errors: got %v, want %v (%v)", names, tt.wantFields, errs)
			}
			if len(tt.wantFields) > 0 {
				return
			}
			check := func(name string, got *time.Time, want time.Time) {
				switch {
				case want.IsZero() && got != nil:
					t.Errorf("%s: got %v, want none", name, got)
				case !want.IsZero() && (got == nil || !got.Equal(want)):
					t.Errorf("%s: got %v, want %v", name, got, want)
				}
			}
			check("from", f.From, tt.from)
			check("to", f.To, tt.to)
			if tt.vehicle == "" && f.VehicleID != nil || tt.vehicle != "" && (f.VehicleID == nil || *f.VehicleID != tt.vehicle) {
				t.Errorf("vehicle: got %v, want %q", f.VehicleID, tt.vehicle)
			}
		})
	}
}

func TestWhereUsesParametersOnly(t *testing.T) {
	v := "x' OR '1'='1"
	key := int32(7)
	from := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	sc := scope{Filter: Filter{VehicleID: &v, From: &from}, key: &key}
	sql, args := selectSQL(sc, DefaultOrder)
	if strings.Contains(sql, v) || strings.Contains(sql, "2024") {
		t.Errorf("a value reached the SQL text: %s", sql)
	}
	if want := `SELECT s.id, s.vehicle_key, s."timestamp", s.speed, s.odometer, s.soc, s.elevation, s.shift_state FROM samples s WHERE s.vehicle_key = $1 AND s."timestamp" >= $2 ORDER BY s."timestamp", s.id`; sql != want {
		t.Errorf("got  %s\nwant %s", sql, want)
	}
	if len(args) != 2 || args[0] != key {
		t.Errorf("args: got %v", args)
	}
	for _, p := range []Page{{Number: 1, Size: 10}, {Number: 2000, Size: 100}} {
		sql, _ := pageSQL(sc, Order{{Field: "vehicle_id"}, {Field: "speed", Desc: true}}, p, seekFrom)
		if strings.Contains(sql, v) || strings.Contains(sql, "2024") {
			t.Errorf("a value reached the SQL text: %s", sql)
		}
	}
}

// sortsAll names the pages pageSQL and seekSQL serve by sorting every matching row.
func TestSortsAll(t *testing.T) {
	v := "v1"
	one := Filter{VehicleID: &v}
	for _, tc := range []struct {
		f        Filter
		ordering string
		page     int64
		cursor   bool
		want     bool
	}{
		{Filter{}, "timestamp", 1000, false, false},
		{Filter{}, "-id", 1000, true, false},
		{Filter{}, "speed", 1000, true, false},
		{Filter{}, "-odometer", 1, false, false},
		{Filter{}, "speed,soc", 1, false, true},
		{Filter{}, "vehicle_id", 1000, false, false},            // each vehicle by id
		{Filter{}, "-vehicle_id", 1, true, false},               // vehicleSeek: each vehicle by id
		{Filter{}, "vehicle_id,shift_state", 1000, true, false}, // each vehicle by its states
		{Filter{}, "vehicle_id,shift_state", 1, false, false},
		{Filter{}, "vehicle_id,shift_state,speed", 1, false, true}, // the vehicle's part sorts
		{Filter{}, "soc", 1, false, true},
		{Filter{}, "-soc", 1000, true, false}, // bandedSeek
		{Filter{}, "elevation,-timestamp", 1, true, false},
		{Filter{}, "elevation,vehicle_id", 1, true, true}, // the vehicles' join
		{Filter{}, "-shift_state", 1, false, false},       // statePage
		{Filter{}, "shift_state", 1000, true, false},      // stateSeek
		{Filter{}, "shift_state,id", 1, false, true},
		{one, "vehicle_id", 1000, false, false}, // by id within the vehicle
		{one, "vehicle_id,soc", 1, false, false},
		{one, "-speed,soc", 1000, false, false},
		{one, "shift_state", 1, false, false},
		{one, "shift_state", 1000, false, false},
		{one, "-shift_state", 1, true, false},
		{one, "shift_state,-speed", 1, false, true},
		{one, "soc", 1, false, false},
		{one, "soc", 99, false, false},
		{one, "-elevation", 101, false, true},
		{one, "soc", 1, true, false},          // bands from the cursor's value (bandedSeek)
		{one, "-elevation", 101, true, false}, // a cursor's page, wherever it is
	} {
		o, err := ParseOrdering(tc.ordering)
		if err != nil {
			t.Fatal(err)
		}
		if got := sortsAll(tc.f, o, Page{Number: tc.page, Size: 10}, tc.cursor); got != tc.want {
			t.Errorf("%q vehicle %v page %d cursor %v: %v, want %v", tc.ordering, tc.f.VehicleID != nil, tc.page, tc.cursor, got, tc.want)
		}
	}
}
