package csvrows

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/vehicle-data/vehicle-data/internal/records"
)

// The same field value must be accepted or rejected alike in an upload file and in a create
// body: both call records' rules. A case here fails when the two paths diverge again.
func TestRulesAgreeWithCreate(t *testing.T) {
	valid := map[string]string{"timestamp": "2024-06-01T12:00:00Z", "speed": "1", "odometer": "1", "soc": "50", "elevation": "0", "shift_state": "D"}
	tests := []struct {
		field, value string // value as CSV cell text; numbers are JSON numbers, text a JSON string
		want         bool   // accepted
	}{
		{"speed", "0", true},
		{"speed", "-0", true},
		{"speed", "-1", false},
		{"speed", "-1e-300", false},
		{"speed", "1e999", false},
		{"odometer", "0", true},
		{"odometer", "-0.1", false},
		{"soc", "0", true},
		{"soc", "100", true},
		{"soc", "58.0", true},
		{"soc", "1e2", true},
		{"soc", "58.5", false},
		{"soc", "101", false},
		{"soc", "-1", false},
		{"soc", "1e999", false},
		{"elevation", "-12.5", true},
		{"elevation", "1e999", false},
		{"shift_state", strings.Repeat("D", records.MaxShiftStateLen), true},
		{"shift_state", strings.Repeat("é", records.MaxShiftStateLen), true},
		{"shift_state", strings.Repeat("D", records.MaxShiftStateLen+1), false},
		{"shift_state", strings.Repeat("é", records.MaxShiftStateLen+1), false},
		{"shift_state", "D\x00", false},
		{"timestamp", "2024-06-01", true},
		{"timestamp", "2024-06-01 12:00:00.5+02:00", true},
		{"timestamp", "2022-02-30", false},
		{"timestamp", "2024-06-01T12:00", false},
	}
	for _, tt := range tests {
		t.Run(tt.field+"="+tt.value, func(t *testing.T) {
			var header, cells []string
			body := map[string]any{"vehicle_id": "v"}
			for _, f := range required {
				v := valid[f]
				if f == tt.field {
					v = tt.value
				}
				header, cells = append(header, f), append(cells, v)
				if f == "timestamp" || f == "shift_state" {
					body[f] = v
				} else {
					body[f] = json.RawMessage(v)
				}
			}
			r := NewReader(strings.NewReader(strings.Join(header, ",")+"\n"+strings.Join(cells, ",")+"\n"), "v")
			_, rowErr, err := r.Next()
			if err != nil {
				t.Fatal(err)
			}
			js, err := json.Marshal(body)
			if err != nil {
				t.Fatal(err)
			}
			_, jsonErr := records.DecodeJSON(strings.NewReader(string(js)))
			if gotCSV, gotJSON := rowErr == nil, jsonErr == nil; gotCSV != tt.want || gotJSON != tt.want {
				t.Errorf("accepted: file %v (%v), create %v (%v); want %v", gotCSV, rowErr, gotJSON, jsonErr, tt.want)
			}
		})
	}
}
