package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/vehicle-data/vehicle-data/gen/api"
	"github.com/vehicle-data/vehicle-data/internal/apperr"
	"github.com/vehicle-data/vehicle-data/internal/csvrows"
	"github.com/vehicle-data/vehicle-data/internal/ingest"
)

// maxFieldBytes bounds the text fields of the chunk form; the longest (file_name) is 255
// characters, at most 4 bytes each.
const maxFieldBytes = 1024

// chunkBuffers are reused between chunk uploads: a chunk of up to 16 MiB read into a fresh
// slice grows it by copying, twice its size in garbage; a reused buffer is already grown.
// How many are in use at once is bounded by the chunk-bytes-in-flight limit.
var chunkBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// UploadChunk implements POST /api/v1/vehicle_data/upload_chunk/. It reads the form part by
// part, holding at most one chunk in memory.
func (h *Handlers) UploadChunk(ctx context.Context, req api.UploadChunkRequestObject) (api.UploadChunkResponseObject, error) {
	var (
		chunk    []byte
		hasChunk bool
		fields   = map[string]string{}
	)
	buf := chunkBuffers.Get().(*bytes.Buffer)
	defer chunkBuffers.Put(buf) // after PutChunk: the chunk's bytes live in buf until then
	buf.Reset()
	for {
		part, err := req.Body.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, formError(err)
		}
		name := part.FormName()
		switch name {
		case "chunk":
			// One byte over the limit is enough to know the chunk is too large.
			limit := h.ingest.MaxChunkBytes()
			buf.Reset()
			if _, err = buf.ReadFrom(io.LimitReader(part, limit+1)); err != nil {
				return nil, formError(err)
			}
			chunk = buf.Bytes()
			if int64(len(chunk)) > limit {
				return nil, apperr.TooLarge("chunk is larger than the limit of %d bytes (max-chunk-bytes)", limit)
			}
			hasChunk = true
		case "file_name", "chunk_index", "total_chunks", "vehicle_id":
			b, err := io.ReadAll(io.LimitReader(part, maxFieldBytes+1))
			if err != nil {
				return nil, formError(err)
			}
			if len(b) > maxFieldBytes {
				return nil, apperr.InvalidField(name, "is longer than %d bytes", maxFieldBytes)
			}
			fields[name] = string(b)
		default:
			// Unknown fields are ignored, but drained so the next part can be read.
			if _, err := io.Copy(io.Discard, part); err != nil {
				return nil, formError(err)
			}
		}
	}

	var errs []apperr.FieldError
	if !hasChunk {
		errs = append(errs, apperr.FieldError{Field: "chunk", Message: "is required (a file part)"})
	}
	for _, f := range []string{"file_name", "chunk_index", "total_chunks", "vehicle_id"} {
		if _, ok := fields[f]; !ok {
			errs = append(errs, apperr.FieldError{Field: f, Message: "is required"})
		}
	}
	index, err := formInt(fields, "chunk_index", 0)
	if err != nil {
		errs = append(errs, *err)
	}
	total, err := formInt(fields, "total_chunks", 1)
	if err != nil {
		errs = append(errs, *err)
	}
	if len(errs) > 0 {
		sort.SliceStable(errs, func(i, j int) bool { return errs[i].Field < errs[j].Field })
		return nil, formInvalid(errs)
	}

	meta := ingest.ChunkMeta{VehicleID: fields["vehicle_id"], FileName: fields["file_name"], Index: index, Total: total}
	received, rerr := h.ingest.PutChunk(ctx, meta, chunk)
	if rerr != nil {
		return nil, rerr
	}
	return api.UploadChunk200JSONResponse{
		Status:         api.ChunkReceivedStatusChunkReceived,
		VehicleId:      meta.VehicleID,
		FileName:       meta.FileName,
		ChunkIndex:     int32(meta.Index),
		TotalChunks:    int32(meta.Total),
		ReceivedChunks: int32(received),
	}, nil
}

func formInt(fields map[string]string, name string, min int) (int, *apperr.FieldError) {
	s, ok := fields[name]
	if !ok {
		return 0, nil // reported as missing
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < min || n > 1<<30 {
		return 0, &apperr.FieldError{Field: name, Message: fmt.Sprintf("must be an integer >= %d (got %q)", min, truncateBytes(s, 40))}
	}
	return n, nil
}

func formInvalid(errs []apperr.FieldError) error {
	names := make([]string, len(errs))
	for i, e := range errs {
		names[i] = e.Field
	}
	return apperr.Invalid("invalid form field(s): "+strings.Join(names, ", "), errs...)
}

// formError classifies a failure to read the multipart body: over the body limit is a
// 413, anything else is the client's malformed form.
func formError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return apperr.TooLarge("request body is larger than the limit of %d bytes", mbe.Limit)
	}
	return apperr.Invalid("malformed multipart/form-data body: " + err.Error())
}

func truncateBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// GetUploadStatus implements GET /api/v1/vehicle_data/upload_status/.
func (h *Handlers) GetUploadStatus(ctx context.Context, req api.GetUploadStatusRequestObject) (api.GetUploadStatusResponseObject, error) {
	st, err := h.ingest.Status(ctx, req.Params.VehicleId, req.Params.FileName)
	if err != nil {
		return nil, err
	}
	return api.GetUploadStatus200JSONResponse{
		VehicleId:      st.VehicleID,
		FileName:       st.FileName,
		TotalChunks:    int32(st.Total),
		ReceivedChunks: int32s(st.Received),
		MissingChunks:  int32s(st.Missing),
		Bytes:          st.Bytes,
	}, nil
}

// FinalizeUpload implements POST /api/v1/vehicle_data/finalize_upload/.
func (h *Handlers) FinalizeUpload(ctx context.Context, req api.FinalizeUploadRequestObject) (api.FinalizeUploadResponseObject, error) {
	b := req.Body
	res, err := h.ingest.Finalize(ctx, ingest.FinalizeRequest{
		VehicleID:   b.VehicleId,
		FileName:    b.FileName,
		Total:       int(b.TotalChunks),
		SkipInvalid: b.SkipInvalidRows != nil && *b.SkipInvalidRows,
	})
	var missing *ingest.MissingChunksError
	if errors.As(err, &missing) {
		m := int32s(missing.Missing)
		return api.FinalizeUpload409JSONResponse{
			Detail:        fmt.Sprintf("upload is missing %d of %d chunks: %s", len(missing.Missing), missing.Total, listPreview(missing.Missing, 20)),
			MissingChunks: &m,
		}, nil
	}
	var invalid *ingest.RowsInvalidError
	if errors.As(err, &invalid) {
		return api.FinalizeUpload422JSONResponse{
			Detail:      fmt.Sprintf("%d invalid row(s); nothing was inserted and the upload is kept (fix the file or finalize with skip_invalid_rows)", invalid.Invalid),
			RowsInvalid: invalid.Invalid,
			Errors:      toAPIRowErrors(invalid.Errors),
		}, nil
	}
	if err != nil {
		return nil, err
	}
	return api.FinalizeUpload200JSONResponse{
		Body: api.FinalizeResult{
			Status:        api.Processed,
			VehicleId:     b.VehicleId,
			FileName:      b.FileName,
			RowsReceived:  res.RowsReceived,
			RowsInserted:  res.RowsInserted,
			RowsDuplicate: res.RowsDuplicate,
			RowsInvalid:   res.RowsInvalid,
			Errors:        toAPIRowErrors(res.Errors), // [] without skip_invalid_rows: invalid rows were a 422
		},
		Headers: api.FinalizeUpload200ResponseHeaders{XWriteLSN: writeLSN(res.WriteLSN)},
	}, nil
}

// toAPIRowErrors never returns nil: an empty report is "errors": [], not null.
func toAPIRowErrors(es []csvrows.RowError) []api.RowError {
	out := make([]api.RowError, len(es))
	for i, e := range es {
		out[i] = api.RowError{Line: int64(e.Line), Column: e.Column, Value: e.Value, Message: e.Message}
	}
	return out
}

func int32s(xs []int) []int32 {
	out := make([]int32, len(xs))
	for i, x := range xs {
		out[i] = int32(x)
	}
	return out
}

func listPreview(xs []int, n int) string {
	parts := make([]string, 0, n+1)
	for i, x := range xs {
		if i == n {
			parts = append(parts, fmt.Sprintf("… (%d more)", len(xs)-n))
			break
		}
		parts = append(parts, strconv.Itoa(x))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
