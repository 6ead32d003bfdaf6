package records

import (
	"errors"
	"io"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vehicle-data/vehicle-data/internal/apperr"
)

func TestDecodeJSON(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		want       Record
		wantFields []string // nil: valid
		wantDetail string
	}{
		{
			name: "full",
			body: `{"vehicle_id":"v1","timestamp":"2024-06-01T14:00:00+02:00","speed":55.5,"odometer":1234.5,"soc":80,"elevation":-3.5,"shift_state":"D"}`,
			want: Record{VehicleID: "v1", Timestamp: time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC), Speed: ptr(55.5), Odometer: 1234.5, SOC: 80, Elevation: -3.5, ShiftState: ptr("D")},
		},
		{
			name: "nulls, soc as 58.0, id and unknown fields ignored",
			body: `{"id":7,"vehicle_id":"v","timestamp":"2024-06-01","speed":null,"odometer":0,"soc":58.0,"elevation":0,"shift_state":null,"x":{"y":1}}`,
			want: Record{VehicleID: "v", Timestamp: time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC), SOC: 58},
		},
		{
			name: "optional fields absent, exponent soc",
			body: `{"vehicle_id":"v","timestamp":"2024-06-01 10:00:00.5","odometer":1,"soc":1e2,"elevation":1}`,
			want: Record{VehicleID: "v", Timestamp: time.Date(2024, 6, 1, 10, 0, 0, 5e8, time.UTC), Odometer: 1, SOC: 100, Elevation: 1},
		},
		{name: "empty object", body: `{}`, wantFields: []string{"vehicle_id", "timestamp", "odometer", "soc", "elevation"}},
		{name: "quoted number", body: `{"vehicle_id":"v","timestamp":"2024-06-01","odometer":"1","soc":1,"elevation":0}`, wantFields: []string{"odometer"}},
		{name: "soc fraction", body: `{"vehicle_id":"v","timestamp":"2024-06-01","odometer":1,"soc":50.5,"elevation":0}`, wantFields: []string{"soc"}},
		{name: "soc range", body: `{"vehicle_id":"v","timestamp":"2024-06-01","odometer":1,"soc":101,"elevation":0}`, wantFields: []string{"soc"}},
		{name: "negative speed", body: `{"vehicle_id":"v","timestamp":"2024-06-01","speed":-0.1,"odometer":1,"soc":1,"elevation":0}`, wantFields: []string{"speed"}},
		{name: "overflow", body: `{"vehicle_id":"v","timestamp":"2024-06-01","odometer":1,"soc":1,"elevation":-1e400}`, wantFields: []string{"elevation"}},
		{name: "bool soc", body: `{"vehicle_id":"v","timestamp":"2024-06-01","odometer":1,"soc":true,"elevation":0}`, wantFields: []string{"soc"}},
		{name: "null timestamp", body: `{"vehicle_id":"v","timestamp":null,"odometer":1,"soc":1,"elevation":0}`, wantFields: []string{"timestamp"}},
		{name: "bad offset form", body: `{"vehicle_id":"v","timestamp":"2024-06-01T00:00:00+0200","odometer":1,"soc":1,"elevation":0}`, wantFields: []string{"timestamp"}},
		{name: "shift state length counts characters", body: `{"vehicle_id":"v","timestamp":"2024-06-01","odometer":1,"soc":1,"elevation":0,"shift_state":"` + strings.Repeat("é", 20) + `"}`,
			want: Record{VehicleID: "v", Timestamp: time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC), Odometer: 1, SOC: 1, ShiftState: ptr(strings.Repeat("é", 20))}},
		{name: "array", body: `[]`, wantDetail: "must be a JSON object"},
		{name: "null", body: `null`, wantDetail: "not null"},
		{name: "truncated", body: `{"a":`, wantDetail: "malformed JSON"},
		{name: "trailing data", body: `{} x`, wantDetail: "malformed JSON"},
		{name: "empty", body: ``, wantDetail: "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeJSON(strings.NewReader(tt.body))
			if tt.wantFields == nil && tt.wantDetail == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !equalRecord(got, tt.want) {
					t.Errorf("got %+v, want %+v", got, tt.want)
				}
				return
			}
			e, ok := apperr.As(err)
			if !ok || e.Kind != apperr.KindInvalid {
				t.Fatalf("got %v, want an Invalid error", err)
			}
			if tt.wantDetail != "" && !strings.Contains(e.Detail, tt.wantDetail) {
				t.Errorf("detail %q, want it to contain %q", e.Detail, tt.wantDetail)
			}
			if tt.wantFields != nil {
				if names := fields(e.Fields); !slices.Equal(names, tt.wantFields) {
					t.Errorf("fields: got %v, want %v", names, tt.wantFields)
				}
			}
		})
	}
}

// A body that cannot be read (over the size limit, a broken connection) is not the client's
// bad JSON: its error comes back as it is, so the HTTP layer can answer 413 or 5xx, not 400.
func TestDecodeJSONReadError(t *testing.T) {
	errLimit := errors.New("request body too large")
	for _, body := range []io.Reader{
		io.MultiReader(strings.NewReader(`{"vehicle_id": "v`), &failingReader{errLimit}),
		io.MultiReader(strings.NewReader(`{"vehicle_id": "v"}  `), &failingReader{errLimit}),
	} {
		_, err := DecodeJSON(body)
		if !errors.Is(err, errLimit) {
			t.Errorf("got %v, want the read error", err)
		}
		if _, ok := apperr.As(err); ok {
			t.Errorf("got an apperr %v, want the bare read error", err)
		}
	}
}

type failingReader struct{ err error }

func (r *failingReader) Read([]byte) (int, error) { return 0, r.err }

func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"vehicle_id":"v","timestamp":"2024-06-01","odometer":1,"soc":58.0,"elevation":0}`, `[`, `{"soc":1e999}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := DecodeJSON(strings.NewReader(s))
		if err != nil {
			if _, ok := apperr.As(err); !ok {
				t.Fatalf("non-domain error %T: %v", err, err)
			}
			return
		}
		// Whatever is accepted satisfies every rule of the contract.
		switch {
		case r.VehicleID == "" || len([]rune(r.VehicleID)) > MaxVehicleIDLen,
			r.SOC < MinSOC || r.SOC > MaxSOC,
			r.Odometer < 0 || math.IsInf(r.Odometer, 0) || math.IsNaN(r.Odometer),
			math.IsInf(r.Elevation, 0) || math.IsNaN(r.Elevation),
			r.Speed != nil && (*r.Speed < 0 || math.IsInf(*r.Speed, 0)),
			r.ShiftState != nil && len([]rune(*r.ShiftState)) > MaxShiftStateLen,
			r.Timestamp.Year() < 1 || r.Timestamp.Year() > 9999:
			t.Fatalf("accepted an invalid record %+v from %q", r, s)
		}
	})
}

func ptr[T any](v T) *T { return &v }

func equalRecord(a, b Record) bool {
	eqF := func(x, y *float64) bool { return x == nil && y == nil || x != nil && y != nil && *x == *y }
	eqS := func(x, y *string) bool { return x == nil && y == nil || x != nil && y != nil && *x == *y }
	return a.ID == b.ID && a.VehicleID == b.VehicleID && a.Timestamp.Equal(b.Timestamp) && eqF(a.Speed, b.Speed) &&
		a.Odometer == b.Odometer && a.SOC == b.SOC && a.Elevation == b.Elevation && eqS(a.ShiftState, b.ShiftState)
}
