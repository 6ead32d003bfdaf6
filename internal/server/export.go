package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/vehicle-data/vehicle-data/gen/api"
	"github.com/vehicle-data/vehicle-data/internal/apperr"
	"github.com/vehicle-data/vehicle-data/internal/export"
	"github.com/vehicle-data/vehicle-data/internal/records"
)

// ExportVehicleData implements GET /api/v1/vehicle_data/export/. Every parameter is checked
// here, before any byte of the file is written.
func (h *Handlers) ExportVehicleData(ctx context.Context, req api.ExportVehicleDataRequestObject) (api.ExportVehicleDataResponseObject, error) {
	p := req.Params
	f, o, errs := listParams(p.VehicleId, p.InitialTimestamp, p.FinalTimestamp, p.Timezone, p.Ordering)
	var format export.Format
	if p.Export != nil {
		var err error
		if format, err = export.ParseFormat(string(*p.Export)); err != nil {
			errs = append(errs, apperr.FieldError{Field: "export", Message: err.Error()})
		}
	} else {
		format = export.CSV
	}
	ctx, lerrs := readAfter(ctx, p.XMinLSN)
	errs = append(errs, lerrs...)
	if len(errs) > 0 {
		return nil, invalidParams(errs)
	}
	if format == export.XLSX {
		n, err := h.records.ExportCount(ctx, f)
		if err != nil {
			return nil, err
		}
		if !h.xlsxOptions().Fits(n) {
			return nil, apperr.TooLarge("%d rows match, more than the XLSX limit of %d rows; use export=csv, json or ndjson, which stream any number of rows, or narrow the filter", n, h.xlsxRowLimit)
		}
	}
	return &exportResponse{ctx: ctx, h: h, filter: f, order: o, format: format, vehicleID: deref(f.VehicleID)}, nil
}

// xlsxOptions are the XLSX encoder's options, whose Fits is the one reading of the row limit.
func (h *Handlers) xlsxOptions() export.XLSXOptions {
	return export.XLSXOptions{MaxRows: int(h.xlsxRowLimit)}
}

// exportResponse streams the file from the store to the client. The strict server calls
// Visit with the response writer; the request's context travels with the value.
type exportResponse struct {
	ctx       context.Context
	h         *Handlers
	filter    records.Filter
	order     records.Order
	format    export.Format
	vehicleID string
}

func (r *exportResponse) VisitExportVehicleDataResponse(w http.ResponseWriter) error {
	sw := &stallWriter{w: w, rc: http.NewResponseController(w), stall: r.h.exportStall}
	lw := &lazyHeaderWriter{w: sw, rw: w, header: func(h http.Header) {
		h.Set("Content-Type", r.format.ContentType())
		h.Set("Content-Disposition", export.ContentDisposition(r.vehicleID, r.format))
		h.Set("X-Content-Type-Options", "nosniff")
	}}
	var enc export.Encoder
	if r.format == export.XLSX {
		enc = export.NewXLSX(lw, r.h.xlsxOptions())
	} else {
		var err error
		if enc, err = export.New(r.format, lw); err != nil {
			return err // ParseFormat let only known formats through
		}
	}
	defer enc.Close()

	var rows int64
	err := enc.Begin()
	if err == nil {
		err = r.h.records.Stream(r.ctx, r.filter, r.order, func(rec *records.Record) error {
			rows++
			// A workbook is built before any byte goes out, so no write notices a client
			// that left; stop building for it.
			if rows%4096 == 0 && r.ctx.Err() != nil {
				return r.ctx.Err()
			}
			return enc.Write(rec)
		})
	}
	if err == nil {
		err = enc.End()
	}
	r.h.metrics.RowsExported(string(r.format), rows)
	if err == nil {
		lw.start() // an empty NDJSON file has no bytes, but still a status and headers
		return nil
	}
	if !lw.started {
		if errors.Is(err, export.ErrTooManyRows) {
			// Rows were added between the count and the snapshot: still the XLSX limit.
			return apperr.TooLarge("more rows match than the XLSX limit of %d rows; use export=csv, json or ndjson, or narrow the filter", r.h.xlsxRowLimit)
		}
		return err // nothing sent yet: the error handler answers with a proper status
	}
	// The status line is gone: a clean end would pass a truncated file off as complete,
	// so abort the connection instead.
	switch {
	case errors.Is(r.ctx.Err(), context.Canceled):
		r.h.logger.InfoContext(r.ctx, "export canceled by the client", "format", r.format, "rows", rows)
	case sw.stalled():
		r.h.logger.WarnContext(r.ctx, "export dropped: the client accepted nothing for the stall timeout", "format", r.format, "rows", rows, "stall_timeout", r.h.exportStall.String())
	default:
		r.h.logger.ErrorContext(r.ctx, "export failed after the response started; aborting the connection", "format", r.format, "rows", rows, "err", err)
	}
	panic(http.ErrAbortHandler)
}

// lazyHeaderWriter sends the status and headers with the first byte, so a failure
// before any data can still become a proper error response.
type lazyHeaderWriter struct {
	w       io.Writer // the body, through the stall guard
	rw      http.ResponseWriter
	header  func(http.Header)
	started bool
}

func (l *lazyHeaderWriter) start() {
	if !l.started {
		l.started = true
		l.header(l.rw.Header())
		l.rw.WriteHeader(http.StatusOK)
	}
}

func (l *lazyHeaderWriter) Write(p []byte) (int, error) {
	l.start()
	n, err := l.w.Write(p)
	if err != nil {
		return n, fmt.Errorf("write export: %w", err)
	}
	return n, nil
}

// stallWriter drops a download that makes no progress: each write may block at most the
// stall timeout, the deadline moving on as bytes go out (checked every stall/4, not on
// every small write); zero: no limit. A client that stops reading then frees its export slot and database
// connection within the timeout instead of holding them until the server's write timeout.
type stallWriter struct {
	w      http.ResponseWriter
	rc     *http.ResponseController
	stall  time.Duration
	last   time.Time // when the deadline was last moved
	failed bool      // a write hit the deadline
}

func (s *stallWriter) Write(p []byte) (int, error) {
	if now := time.Now(); s.stall > 0 && now.Sub(s.last) > s.stall/4 {
		s.last = now
		_ = s.rc.SetWriteDeadline(now.Add(s.stall))
	}
	n, err := s.w.Write(p)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		s.failed = true
	}
	return n, err
}

func (s *stallWriter) stalled() bool { return s.failed }
