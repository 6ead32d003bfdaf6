package records

import (
	"strings"
	"testing"
)

// vehicle_id follows one rule (CheckText) in the list/export filter, in create bodies and in
// uploads (ingest calls CheckText too); invalid UTF-8 is rejected everywhere, as the contract
// says of every parameter.
func TestVehicleIDRule(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"veh1", true},
		{strings.Repeat("é", MaxVehicleIDLen), true},
		{strings.Repeat("é", MaxVehicleIDLen+1), false},
		{"a\x00b", false},
		{"\xff", false},
		{"veh\xc3", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := CheckText(tt.in, MaxVehicleIDLen) == nil; got != tt.want {
				t.Errorf("CheckText(%q) accepted %v, want %v", tt.in, got, tt.want)
			}
			v := tt.in
			f, errs := ParseFilter(FilterInput{VehicleID: &v})
			if got := len(errs) == 0 && f.VehicleID != nil; got != tt.want {
				t.Errorf("ParseFilter(vehicle_id=%q) accepted %v (%v), want %v", tt.in, got, errs, tt.want)
			}
		})
	}
	if CheckText("", MaxVehicleIDLen) == nil {
		t.Error("CheckText accepts an empty value")
	}
}
