package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vehicle-data/vehicle-data/gen/api"
	"github.com/vehicle-data/vehicle-data/internal/apperr"
	"github.com/vehicle-data/vehicle-data/internal/database"
	"github.com/vehicle-data/vehicle-data/internal/ingest"
	"github.com/vehicle-data/vehicle-data/internal/metrics"
	"github.com/vehicle-data/vehicle-data/internal/records"
)

// Handlers implements the generated strict server: each method decodes, calls one
// capability, and encodes.
type Handlers struct {
	records      *records.Store
	ingest       *ingest.Service
	ready        func(context.Context) error
	degraded     func() string
	logger       *slog.Logger
	xlsxRowLimit int64
	exportStall  time.Duration
	metrics      *metrics.Metrics
}

var _ api.StrictServerInterface = (*Handlers)(nil)

// listParams parses the filter and ordering shared by list and export.
func listParams(vehicleID, initial, final, tz, ordering *string) (records.Filter, records.Order, []apperr.FieldError) {
	f, errs := records.ParseFilter(records.FilterInput{
		VehicleID: vehicleID, InitialTimestamp: initial, FinalTimestamp: final, Timezone: tz,
	})
	o, err := records.ParseOrdering(deref(ordering))
	if err != nil {
		errs = append(errs, apperr.FieldError{Field: "ordering", Message: err.Error()})
	}
	return f, o, errs
}

func invalidParams(errs []apperr.FieldError) error {
	names := make([]string, len(errs))
	for i, e := range errs {
		names[i] = e.Field
	}
	detail := "invalid query parameter(s): " + strings.Join(names, ", ")
	if len(errs) == 1 {
		detail = fmt.Sprintf("invalid query parameter %s: %s", errs[0].Field, errs[0].Message)
	}
	return apperr.Invalid(detail, errs...)
}

// ListVehicleData implements GET /api/v1/vehicle_data/.
func (h *Handlers) ListVehicleData(ctx context.Context, req api.ListVehicleDataRequestObject) (api.ListVehicleDataResponseObject, error) {
	p := req.Params
	f, o, errs := listParams(p.VehicleId, p.InitialTimestamp, p.FinalTimestamp, p.Timezone, p.Ordering)
	page, perrs := records.ParsePage(p.Page, p.PageSize)
	errs = append(errs, perrs...)
	ctx, lerrs := readAfter(ctx, p.XMinLSN)
	errs = append(errs, lerrs...)
	cursor := deref(p.Cursor)
	if cursor != "" && p.Page != nil {
		errs = append(errs, apperr.FieldError{Field: "cursor", Message: "cannot be combined with page"})
	}
	if len(errs) > 0 {
		return nil, invalidParams(errs)
	}
	res, err := h.records.List(ctx, f, o, page, cursor)
	if err != nil {
		return nil, err
	}
	out := api.ListVehicleData200JSONResponse{
		Count:          res.Count,
		Results:        toAPIRecords(res.Records),
		VehicleIDs:     res.VehicleIDs,
		NextCursor:     optional(res.Next),
		PreviousCursor: optional(res.Previous),
	}
	if out.VehicleIDs == nil {
		out.VehicleIDs = []string{}
	}
	u := requestURL(ctx)
	switch {
	case cursor != "": // a cursor page links to its neighbours by cursor
		out.Next = cursorURL(u, res.Next)
		out.Previous = cursorURL(u, res.Previous)
	default:
		if page.Offset()+page.Size < res.Count {
			out.Next = pageURL(u, page.Number+1)
		}
		if page.Number > 1 {
			out.Previous = pageURL(u, page.Number-1)
		}
	}
	return out, nil
}

// pageURL is the request's URL with another page number; every other parameter is kept.
func pageURL(u *url.URL, page int64) *string {
	return withQuery(u, "page", strconv.FormatInt(page, 10))
}

// cursorURL is the request's URL with another cursor, or nil without one.
func cursorURL(u *url.URL, cursor string) *string {
	if cursor == "" {
		return nil
	}
	return withQuery(u, "cursor", cursor)
}

func withQuery(u *url.URL, key, value string) *string {
	next := *u
	q := next.Query()
	q.Set(key, value)
	next.RawQuery = q.Encode()
	s := next.String()
	return &s
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// CreateVehicleData implements POST /api/v1/vehicle_data/. The body arrives raw (see
// gen/api/overlay.yaml; jsonOnly has checked its Content-Type) and is decoded once, by
// records.DecodeJSON, which reports every bad field.
func (h *Handlers) CreateVehicleData(ctx context.Context, req api.CreateVehicleDataRequestObject) (api.CreateVehicleDataResponseObject, error) {
	in, err := records.DecodeJSON(req.Body)
	if err != nil {
		return nil, err
	}
	r, lsn, err := h.records.Create(ctx, in)
	if err != nil {
		return nil, err
	}
	loc := fmt.Sprintf("/api/v1/vehicle_data/%d/", r.ID)
	return api.CreateVehicleData201JSONResponse{
		Body:    toAPIRecord(r),
		Headers: api.CreateVehicleData201ResponseHeaders{Location: &loc, XWriteLSN: writeLSN(lsn)},
	}, nil
}

// writeLSN is a write's X-Write-LSN header: absent when the position could not be read.
func writeLSN(lsn database.LSN) *string {
	if lsn == 0 {
		return nil
	}
	s := lsn.String()
	return &s
}

// readAfter returns ctx for a read that must see the writes up to the client's X-Min-LSN
// (see database.WithMinLSN); a header that is not an LSN is a field error naming it.
func readAfter(ctx context.Context, minLSN *string) (context.Context, []apperr.FieldError) {
	if minLSN == nil || strings.TrimSpace(*minLSN) == "" {
		return ctx, nil
	}
	lsn, err := database.ParseLSN(strings.TrimSpace(*minLSN))
	if err != nil {
		return ctx, []apperr.FieldError{{Field: "X-Min-LSN", Message: err.Error()}}
	}
	return database.WithMinLSN(ctx, lsn), nil
}

// GetVehicleData implements GET /api/v1/vehicle_data/{id}/.
func (h *Handlers) GetVehicleData(ctx context.Context, req api.GetVehicleDataRequestObject) (api.GetVehicleDataResponseObject, error) {
	if req.Id < 1 {
		return nil, apperr.InvalidField("id", "must be a positive integer")
	}
	ctx, errs := readAfter(ctx, req.Params.XMinLSN)
	if len(errs) > 0 {
		return nil, invalidParams(errs)
	}
	r, err := h.records.Get(ctx, req.Id)
	if err != nil {
		return nil, err
	}
	return api.GetVehicleData200JSONResponse(toAPIRecord(r)), nil
}

// ListVehicles implements GET /api/v1/vehicles/.
func (h *Handlers) ListVehicles(ctx context.Context, req api.ListVehiclesRequestObject) (api.ListVehiclesResponseObject, error) {
	ctx, errs := readAfter(ctx, req.Params.XMinLSN)
	if len(errs) > 0 {
		return nil, invalidParams(errs)
	}
	vs, err := h.records.Vehicles(ctx)
	if err != nil {
		return nil, err
	}
	return api.ListVehicles200JSONResponse{Results: toAPIVehicles(vs)}, nil
}

// GetHealth implements GET /healthz: the process answers.
func (h *Handlers) GetHealth(context.Context, api.GetHealthRequestObject) (api.GetHealthResponseObject, error) {
	return api.GetHealth200JSONResponse{Status: "ok"}, nil
}

// GetReadiness implements GET /readyz: the database answers and is migrated. A server that
// serves short of its configuration (its read standby down) is ready, and says how.
func (h *Handlers) GetReadiness(ctx context.Context, _ api.GetReadinessRequestObject) (api.GetReadinessResponseObject, error) {
	if err := h.ready(ctx); err != nil {
		h.logger.WarnContext(ctx, "not ready", "err", err)
		return api.GetReadiness503JSONResponse{Detail: "not ready: " + err.Error()}, nil
	}
	if d := h.degraded(); d != "" {
		return api.GetReadiness200JSONResponse{Status: "degraded", Detail: &d}, nil
	}
	return api.GetReadiness200JSONResponse{Status: "ok"}, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
