// Package records holds the vehicle telemetry record, its validation rules, and the
// store calls behind list, create, retrieve and the per-vehicle figures.
package records

import "time"

// Record is one telemetry sample as stored. Nullable columns are pointers.
type Record struct {
	ID         int64
	VehicleID  string
	Timestamp  time.Time // always UTC when read from the store
	Speed      *float64
	Odometer   float64
	SOC        int16
	Elevation  float64
	ShiftState *string
}

// Limits of the contract, shared by the API, the CSV reader and the schema.
const (
	MaxVehicleIDLen  = 100
	MaxShiftStateLen = 20
	MinSOC           = 0
	MaxSOC           = 100
)
