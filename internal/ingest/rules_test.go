package ingest_test

import (
	"strings"
	"testing"

	"github.com/vehicle-data/vehicle-data/internal/apperr"
	"github.com/vehicle-data/vehicle-data/internal/ingest"
	"github.com/vehicle-data/vehicle-data/internal/records"
)

// An upload's vehicle_id and file_name follow records.CheckText, the rule of the filter and
// of create bodies too: the names are checked before the database is touched.
func TestUploadNamesFollowTheTextRule(t *testing.T) {
	svc := ingest.New(nil, ingest.Options{}) // never reaches the pool
	for _, v := range []string{"", "\xff", "a\x00b", strings.Repeat("é", records.MaxVehicleIDLen+1)} {
		if records.CheckText(v, records.MaxVehicleIDLen) == nil {
			t.Fatalf("CheckText accepts %q", v)
		}
		_, err := svc.Status(t.Context(), v, "f.csv")
		if !isKind(err, apperr.KindInvalid) {
			t.Errorf("Status(vehicle_id %q) = %v, want invalid", v, err)
		}
		_, err = svc.Status(t.Context(), "veh1", strings.Replace(v, "é", "ééé", -1))
		if !isKind(err, apperr.KindInvalid) {
			t.Errorf("Status(file_name %q) = %v, want invalid", v, err)
		}
	}
}
