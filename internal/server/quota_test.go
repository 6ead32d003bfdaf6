package server_test

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/vehicle-data/vehicle-data/gen/client"
	"github.com/vehicle-data/vehicle-data/internal/config"
	"github.com/vehicle-data/vehicle-data/internal/testdb"
)

// postChunk sends a chunk through the generated client, which decodes each documented status.
func (e *env) postChunk(t *testing.T, vehicle, file string, index, total int, data []byte) *client.UploadChunkResponse {
	t.Helper()
	ct, body := chunkForm(t, data, map[string]string{
		"file_name": file, "chunk_index": fmt.Sprint(index), "total_chunks": fmt.Sprint(total), "vehicle_id": vehicle,
	})
	r, err := e.Client.UploadChunkWithBodyWithResponse(t.Context(), ct, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("upload_chunk %s %d: %v", file, index, err)
	}
	return r
}

// wantUploadStatus fails unless upload_status shows the chunks received, of bytes in all.
func (e *env) wantUploadStatus(t *testing.T, vehicle, file string, received []int32, bytes int64) {
	t.Helper()
	st, err := e.Client.GetUploadStatusWithResponse(t.Context(), &client.GetUploadStatusParams{VehicleId: vehicle, FileName: file})
	if err != nil || st.JSON200 == nil {
		t.Fatalf("upload_status %s: %v %d %s", file, err, st.StatusCode(), st.Body)
	}
	if !slices.Equal(st.JSON200.ReceivedChunks, received) || st.JSON200.Bytes != bytes {
		t.Errorf("upload_status %s = received %v, %d bytes; want %v, %d bytes", file, st.JSON200.ReceivedChunks, st.JSON200.Bytes, received, bytes)
	}
}

func TestUploadQuotas(t *testing.T) {
	t.Parallel()
	pool := testdb.New(t)
	limits := func(c *config.Config) {
		c.MaxChunkBytes = 1024
		c.MaxUploadBytes = 2560
		c.MaxPendingUploadBytes = 4096
	}
	// Two replicas on one database: the total is the database's, not a replica's.
	a, b := newEnvOn(t, pool, limits), newEnvOn(t, pool, limits)
	kib := bytes.Repeat([]byte("x"), 1024)

	t.Run("per upload: 413 naming the limit, nothing stored", func(t *testing.T) {
		for i := range 2 {
			if r := a.postChunk(t, "v", "a.csv", i, 3, kib); r.StatusCode() != 200 {
				t.Fatalf("chunk %d: %d %s", i, r.StatusCode(), r.Body)
			}
		}
		r := a.postChunk(t, "v", "a.csv", 2, 3, kib)
		if r.StatusCode() != http.StatusRequestEntityTooLarge || r.JSON413 == nil {
			t.Fatalf("third KiB: %d %s, want a 413 problem", r.StatusCode(), r.Body)
		}
		want := `upload "a.csv" of vehicle "v" would hold 3072 bytes, more than the limit of 2560 bytes per upload (max-upload-bytes)`
		if r.JSON413.Detail != want {
			t.Errorf("detail = %q, want %q", r.JSON413.Detail, want)
		}
		a.wantUploadStatus(t, "v", "a.csv", []int32{0, 1}, 2048)
		// A re-sent chunk counts with its new size only.
		if r := b.postChunk(t, "v", "a.csv", 1, 3, kib); r.StatusCode() != 200 {
			t.Errorf("re-sending chunk 1: %d %s", r.StatusCode(), r.Body)
		}
	})

	t.Run("all uploads: 507 naming the limit, nothing stored", func(t *testing.T) {
		// a.csv holds 2048 bytes; b.csv takes the total to 4096, the limit exactly.
		for i := range 2 {
			if r := b.postChunk(t, "v", "b.csv", i, 2, kib); r.StatusCode() != 200 {
				t.Fatalf("b.csv chunk %d: %d %s", i, r.StatusCode(), r.Body)
			}
		}
		// Re-sending a chunk of the same size at the limit is fine.
		if r := a.postChunk(t, "v", "b.csv", 0, 2, kib); r.StatusCode() != 200 {
			t.Errorf("re-sending b.csv chunk 0 at the limit: %d %s", r.StatusCode(), r.Body)
		}
		for _, e := range []*env{a, b} {
			r := e.postChunk(t, "v", "c.csv", 0, 1, []byte("y"))
			if r.StatusCode() != http.StatusInsufficientStorage || r.JSON507 == nil {
				t.Fatalf("one byte more: %d %s, want a 507 problem", r.StatusCode(), r.Body)
			}
			for _, want := range []string{"4097 bytes", "limit of 4096 bytes (max-pending-upload-bytes)", "not stored"} {
				if !strings.Contains(r.JSON507.Detail, want) {
					t.Errorf("detail = %q, want it to contain %q", r.JSON507.Detail, want)
				}
			}
		}
		// Not even the upload was created.
		st, err := a.Client.GetUploadStatusWithResponse(t.Context(), &client.GetUploadStatusParams{VehicleId: "v", FileName: "c.csv"})
		if err != nil || st.StatusCode() != http.StatusNotFound {
			t.Errorf("upload_status of the refused upload: %v %d %s, want 404", err, st.StatusCode(), st.Body)
		}
		b.wantUploadStatus(t, "v", "b.csv", []int32{0, 1}, 2048)
	})
}
