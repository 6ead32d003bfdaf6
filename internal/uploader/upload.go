// Package uploader sends CSV files to the vehicle-data API with the chunked upload
// protocol (upload_chunk, upload_status, finalize_upload): it resumes interrupted
// uploads, sends chunks in parallel straight from the file, retries transient failures
// and reports progress. It is the library behind `vehicle-data upload` and `import`.
package uploader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/vehicle-data/vehicle-data/gen/client"
)

// UploadFile uploads the CSV file at path and finalizes it. If the server holds an
// unfinished upload of the same file name and vehicle, only the chunks it lacks are
// sent. Cancelling ctx stops the upload; running it again later resumes it.
func UploadFile(ctx context.Context, path string, opts Options) (*client.FinalizeResult, error) {
	res, err := uploadFile(ctx, path, opts)
	if err != nil {
		return nil, fmt.Errorf("upload %s: %w", path, err)
	}
	return res, nil
}

func uploadFile(ctx context.Context, path string, opts Options) (*client.FinalizeResult, error) {
	opts, err := opts.withDefaults(path)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	total := chunkCount(info.Size(), opts.ChunkSize)
	if total > math.MaxInt32 {
		return nil, fmt.Errorf("%d bytes in chunks of %d make %d chunks, more than the API allows: use a larger chunk size", info.Size(), opts.ChunkSize, total)
	}
	api, err := newClient(opts)
	if err != nil {
		return nil, err
	}
	u := &upload{
		api:       api,
		opts:      opts,
		file:      f,
		fileName:  filepath.Base(path),
		size:      info.Size(),
		total:     int32(total),
		chunkSize: opts.ChunkSize,
	}
	return u.run(ctx)
}

// upload is one file's upload in progress.
type upload struct {
	api       *client.ClientWithResponses
	opts      Options
	file      *os.File // read with ReadAt, which is safe from several goroutines
	fileName  string
	size      int64
	total     int32
	chunkSize int64
	progress  *progress
}

func (u *upload) run(ctx context.Context) (*client.FinalizeResult, error) {
	todo, err := u.chunksToSend(ctx)
	if err != nil {
		return nil, err
	}
	held := u.size - u.bytesOf(todo)
	u.progress = newProgress(u.opts.Progress, u.opts.IsTerminal, u.fileName, u.size, held, time.Now)
	if err := u.sendAll(ctx, todo); err != nil {
		u.progress.abort()
		return nil, err
	}
	u.progress.finish()
	return u.finalize(ctx)
}

// chunksToSend asks the server what it already holds of this upload.
func (u *upload) chunksToSend(ctx context.Context) ([]int32, error) {
	const op = "upload_status"
	var st *client.UploadStatus
	err := u.retry(ctx, func(ctx context.Context) error {
		params := &client.GetUploadStatusParams{VehicleId: u.opts.VehicleID, FileName: u.fileName}
		r, err := u.api.GetUploadStatusWithResponse(ctx, params)
		switch {
		case err != nil:
			return transportError(ctx, op, err)
		case r.JSON200 != nil:
			st = r.JSON200
			return nil
		case r.StatusCode() == http.StatusNotFound:
			return nil // a new upload
		}
		p := firstProblem(r.JSON400, r.JSON401)
		return statusError(newAPIError(op, r.StatusCode(), r.Body, p), r.HTTPResponse.Header)
	})
	if err != nil {
		return nil, err
	}
	all := make([]int32, u.total)
	for i := range all {
		all[i] = int32(i)
	}
	if st == nil {
		return all, nil
	}
	if st.TotalChunks != u.total {
		return nil, fmt.Errorf("the server holds an unfinished upload of %q for vehicle %q in %d chunks, but this file makes %d chunks of %d bytes: "+
			"resume with the same --chunk-size as the first attempt (if the file itself changed, rename it or wait until the server drops the old upload)",
			u.fileName, u.opts.VehicleID, st.TotalChunks, u.total, u.chunkSize)
	}
	// The server cannot tell us whether its chunks came from this version of the file.
	// When it holds all of them (a finalize that failed, say with invalid rows the user
	// has fixed since) or a byte count this file disagrees with, send everything again:
	// a chunk sent twice replaces the first.
	if len(st.MissingChunks) == 0 || st.Bytes != u.size-u.bytesOf(st.MissingChunks) {
		return all, nil
	}
	return sortedValid(st.MissingChunks, u.total), nil
}

// sortedValid keeps the indexes within 0..total-1, without duplicates, in order.
func sortedValid(idx []int32, total int32) []int32 {
	want := make([]bool, total)
	for _, i := range idx {
		if i >= 0 && i < total {
			want[i] = true
		}
	}
	var out []int32
	for i, w := range want {
		if w {
			out = append(out, int32(i))
		}
	}
	return out
}

// bytesOf is the size of the given chunks of this file.
func (u *upload) bytesOf(idx []int32) int64 {
	var sum int64
	for _, i := range sortedValid(idx, u.total) {
		_, n := chunkSpan(int64(i), u.size, u.chunkSize)
		sum += n
	}
	return sum
}

// sendAll sends the chunks with at most opts.Parallel in flight and stops at the first
// failure, which it returns.
func (u *upload) sendAll(ctx context.Context, idx []int32) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		once  sync.Once
		first error
		wg    sync.WaitGroup
	)
	jobs := make(chan int32)
	for range min(u.opts.Parallel, len(idx)) {
		wg.Go(func() {
			for i := range jobs {
				if err := u.sendChunk(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		})
	}
feed:
	for _, i := range idx {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

func (u *upload) sendChunk(ctx context.Context, i int32) error {
	off, n := chunkSpan(int64(i), u.size, u.chunkSize)
	form := chunkForm{fileName: u.fileName, vehicleID: u.opts.VehicleID, index: i, total: u.total}
	err := u.retry(ctx, func(ctx context.Context) error { return u.postChunk(ctx, form, off, n) })
	if err != nil {
		return err
	}
	u.progress.add(n)
	if u.opts.AfterChunk != nil {
		u.opts.AfterChunk(i)
	}
	return nil
}

// postChunk makes one attempt at sending a chunk. The form is streamed from the file
// through a pipe, so memory does not grow with the chunk size.
func (u *upload) postChunk(ctx context.Context, form chunkForm, off, n int64) error {
	op := fmt.Sprintf("upload_chunk %d", form.index)
	boundary, length, err := form.measure(n)
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	if err := mw.SetBoundary(boundary); err != nil {
		return err
	}
	written := make(chan error, 1)
	go func() {
		err := form.write(mw, io.NewSectionReader(u.file, off, n), n)
		pw.CloseWithError(err)
		written <- err
	}()
	setLength := func(_ context.Context, req *http.Request) error {
		req.ContentLength = length
		return nil
	}
	r, err := u.api.UploadChunkWithBodyWithResponse(ctx, mw.FormDataContentType(), pr, setLength)
	pr.Close() // unblocks the writer when the request ended before reading all of it
	// A failure to read the file is ours and permanent, whatever the request saw.
	if werr := <-written; werr != nil && !errors.Is(werr, io.ErrClosedPipe) {
		return werr
	}
	switch {
	case err != nil:
		return transportError(ctx, op, err)
	case r.JSON200 != nil:
		return nil
	}
	e := newAPIError(op, r.StatusCode(), r.Body, firstProblem(r.JSON400, r.JSON401, r.JSON409, r.JSON413, r.JSON415, r.JSON507))
	e.Hint = chunkHint(e, n, u.size)
	return statusError(e, r.HTTPResponse.Header)
}

// chunkHint says which of the server's limits a refused chunk of n bytes (of a file of size
// bytes) ran into, and what to do about it.
func chunkHint(e *APIError, n, size int64) string {
	switch e.StatusCode {
	case http.StatusRequestEntityTooLarge:
		// The server names the setting of the limit in its detail; only the per-upload limit
		// is about the whole file rather than this chunk.
		if strings.Contains(e.Detail, "max-upload-bytes") {
			return fmt.Sprintf("the file of %d bytes is over the server's per-upload limit: split it into smaller files, or ask the server's operator to raise --max-upload-bytes", size)
		}
		return fmt.Sprintf("the chunk of %d bytes is over the server's limit: use a smaller --chunk-size", n)
	case http.StatusInsufficientStorage:
		return "the server's storage for unfinalized uploads is full: finalize or wait for old uploads to expire, then upload again (the chunks sent so far are kept)"
	}
	return ""
}

// finalize asks the server to assemble, validate and insert the file.
func (u *upload) finalize(ctx context.Context) (*client.FinalizeResult, error) {
	const op = "finalize_upload"
	body := client.FinalizeRequest{
		FileName:        u.fileName,
		TotalChunks:     u.total,
		VehicleId:       u.opts.VehicleID,
		SkipInvalidRows: &u.opts.SkipInvalid,
	}
	var (
		res      *client.FinalizeResult
		attempts int
	)
	err := u.retry(ctx, func(ctx context.Context) error {
		attempts++
		r, err := u.api.FinalizeUploadWithResponse(ctx, body)
		switch {
		case err != nil:
			return transportError(ctx, op, err)
		case r.JSON200 != nil:
			res = r.JSON200
			return nil
		}
		e := newAPIError(op, r.StatusCode(), r.Body, firstProblem(r.JSON400, r.JSON401, r.JSON404, r.JSON413, r.JSON415))
		switch {
		case r.JSON422 != nil:
			e.Detail = r.JSON422.Detail
			e.RowsInvalid = r.JSON422.RowsInvalid
			e.Rows = r.JSON422.Errors
			e.Hint = "nothing was inserted and the server keeps the chunks: fix the file and upload it again, or upload with --skip-invalid-rows to insert the valid rows"
		case r.JSON409 != nil && r.JSON409.MissingChunks != nil:
			e.Detail = r.JSON409.Detail
			e.MissingChunks = *r.JSON409.MissingChunks
			e.Hint = "upload the file again to send the missing chunks"
		case r.JSON409 != nil:
			e.Detail = r.JSON409.Detail
			if attempts > 1 {
				e.Hint = "an earlier attempt that failed in transit may still be running on the server"
			}
		case r.StatusCode() == http.StatusNotFound && attempts > 1:
			e.Hint = "an earlier attempt that failed in transit may have been processed: check the vehicle's records before uploading again"
		}
		return statusError(e, r.HTTPResponse.Header)
	})
	return res, err
}

func (u *upload) retry(ctx context.Context, attempt func(ctx context.Context) error) error {
	return withRetry(ctx, u.opts.Retries, u.opts.RetryBaseDelay, attempt)
}

// newClient builds the generated client with the bearer token, if any.
func newClient(opts Options) (*client.ClientWithResponses, error) {
	clientOpts := []client.ClientOption{client.WithHTTPClient(opts.HTTPClient)}
	if opts.Token != "" {
		auth := "Bearer " + opts.Token
		clientOpts = append(clientOpts, client.WithRequestEditorFn(func(_ context.Context, req *http.Request) error {
			req.Header.Set("Authorization", auth)
			return nil
		}))
	}
	return client.NewClientWithResponses(opts.Server, clientOpts...)
}
