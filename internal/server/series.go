package server

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/vehicle-data/vehicle-data/gen/api"
	"github.com/vehicle-data/vehicle-data/internal/export"
	"github.com/vehicle-data/vehicle-data/internal/records"
)

// GetVehicleSeries implements GET /api/v1/vehicles/{vehicle_id}/series/.
func (h *Handlers) GetVehicleSeries(ctx context.Context, req api.GetVehicleSeriesRequestObject) (api.GetVehicleSeriesResponseObject, error) {
	p := req.Params
	q, errs := records.ParseSeries(req.VehicleId, records.SeriesInput{
		InitialTimestamp: p.InitialTimestamp, FinalTimestamp: p.FinalTimestamp, Timezone: p.Timezone,
		Fields: p.Fields, MaxPoints: p.MaxPoints,
	})
	ctx, lerrs := readAfter(ctx, p.XMinLSN)
	errs = append(errs, lerrs...)
	if len(errs) > 0 {
		return nil, invalidParams(errs)
	}
	s, err := h.records.Series(ctx, q)
	if err != nil {
		return nil, err
	}
	return seriesResponse{s}, nil
}

// seriesResponse writes the series by hand: a bucket has one key per requested field, null
// when the field has no value there and absent when it was not asked for, which the
// generated type (one optional pointer per field) cannot tell apart. It is also the hot
// path of every chart: up to 10,000 buckets without reflection.
type seriesResponse struct{ s records.Series }

func (r seriesResponse) VisitGetVehicleSeriesResponse(w http.ResponseWriter) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	bp := seriesBuffers.Get().(*[]byte)
	b := appendSeries((*bp)[:0], r.s)
	_, err := w.Write(b)
	*bp = b
	seriesBuffers.Put(bp)
	return err
}

// seriesBuffers hold the encoded responses between requests: a chart's is some 100-250 KB,
// whose allocation on every request kept the garbage collector busy under load. The largest
// (10,000 buckets of four fields) is about 4.5 MB.
var seriesBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 256<<10); return &b }}

func appendSeries(b []byte, s records.Series) []byte {
	b = append(b, `{"vehicle_id":`...)
	id, _ := json.Marshal(s.VehicleID) // a string: cannot fail
	b = append(b, id...)
	b = append(b, `,"initial_timestamp":"`...)
	b = s.From.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","final_timestamp":"`...)
	b = s.To.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","bucket_seconds":`...)
	b = strconv.AppendInt(b, int64(s.Width/time.Second), 10)
	b = append(b, `,"fields":[`...)
	for i, f := range s.Fields {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, f...)
		b = append(b, '"')
	}
	b = append(b, `],"buckets":[`...)
	for i, bk := range s.Buckets {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"start":"`...)
		b = bk.Start.UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, `","count":`...)
		b = strconv.AppendInt(b, bk.Count, 10)
		for j, f := range s.Fields {
			b = append(b, `,"`...)
			b = append(b, f...)
			b = append(b, `":`...)
			st := bk.Stats[j]
			if st == nil {
				b = append(b, "null"...)
				continue
			}
			for k, v := range [5]float64{st.Min, st.Max, st.Avg, st.First, st.Last} {
				b = append(b, statKeys[k]...)
				b = export.AppendJSONFloat(b, v)
			}
			b = append(b, '}')
		}
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

var statKeys = [5]string{`{"min":`, `,"max":`, `,"avg":`, `,"first":`, `,"last":`}
