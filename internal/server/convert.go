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

func fromAPIInput(in api.VehicleDataInput) records.Record {
	return records.Record{
		VehicleID:  in.VehicleId,
		Timestamp:  in.Timestamp.UTC(),
		Speed:      in.Speed,
		Odometer:   in.Odometer,
		SOC:        int16(in.Soc),
		Elevation:  in.Elevation,
		ShiftState: in.ShiftState,
	}
}

func toAPIVehicles(vs []records.Vehicle) []api.Vehicle {
	out := make([]api.Vehicle, len(vs))
	for i, v := range vs {
		out[i] = api.Vehicle{VehicleId: v.VehicleID, Count: v.Count, FirstTimestamp: v.First, LastTimestamp: v.Last}
	}
	return out
}

// toAPIInput is the canonical JSON form of a validated record, handed to the generated
// binder after records.DecodeJSON has checked every field.
func toAPIInput(r records.Record) api.VehicleDataInput {
	return api.VehicleDataInput{
		VehicleId:  r.VehicleID,
		Timestamp:  r.Timestamp.UTC(),
		Speed:      r.Speed,
		Odometer:   r.Odometer,
		Soc:        int32(r.SOC),
		Elevation:  r.Elevation,
		ShiftState: r.ShiftState,
	}
}
