package server

import (
	"github.com/vehicle-data/vehicle-data/gen/api"
	"github.com/vehicle-data/vehicle-data/internal/records"
)

// This file is the one place that maps domain values to API types and back.

func toAPIRecord(r records.Record) api.VehicleData {
	return api.VehicleData{
		Id:         r.ID,
		VehicleId:  r.VehicleID,
		Timestamp:  r.Timestamp.UTC(),
		Speed:      r.Speed,
		Odometer:   r.Odometer,
		Soc:        int32(r.SOC),
		Elevation:  r.Elevation,
		ShiftState: r.ShiftState,
	}
}

func toAPIRecords(rs []records.Record) []api.VehicleData {
	out := make([]api.VehicleData, len(rs))
	for i, r := range rs {
		out[i] = toAPIRecord(r)
	}
	return out
}

func toAPIVehicles(vs []records.Vehicle) []api.Vehicle {
	out := make([]api.Vehicle, len(vs))
	for i, v := range vs {
		out[i] = api.Vehicle{VehicleId: v.VehicleID, Count: v.Count, FirstTimestamp: v.First, LastTimestamp: v.Last}
	}
	return out
}
