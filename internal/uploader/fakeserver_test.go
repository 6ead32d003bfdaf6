package uploader

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/vehicle-data/vehicle-data/gen/client"
)

// fakeServer implements the three upload endpoints in memory, as the contract
// describes them, and records what it was sent. Hooks inject failures.
type fakeServer struct {
	URL string

	// failChunk, when set, may answer a chunk request with a status instead of storing
	// it; attempt counts from 1 per index. It returns 0 to let the request through.
	failChunk func(index int32, attempt int) int
	// finalizeHook, when set, may answer a finalize instead; it returns false to let
	// the request through.
	finalizeHook func(w http.ResponseWriter, req client.FinalizeRequest) bool
	// inChunk, when set, runs while a chunk request is in flight.
	inChunk func()

	mu          sync.Mutex
	uploads     map[uploadKey]*fakeUpload
	attempts    map[int32]int // chunk requests per index
	stored      []int32       // chunk indexes stored, in arrival order
	auth        []string      // Authorization header of every request
	chunkLens   map[int32]int // bytes of each stored chunk
	lengthKnown bool          // every chunk request had a Content-Length
	inflight    int
	maxInflight int
	finalized   map[uploadKey][]byte // content of each finalized upload
}

type uploadKey struct{ vehicle, file string }

type fakeUpload struct {
	total  int32
	chunks map[int32][]byte
}

func newFakeServer(t *testing.T) *fakeServer {
	t.Helper()
	s := &fakeServer{
		uploads:     map[uploadKey]*fakeUpload{},
		attempts:    map[int32]int{},
		chunkLens:   map[int32]int{},
		finalized:   map[uploadKey][]byte{},
		lengthKnown: true,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/vehicle_data/upload_chunk/", s.uploadChunk)
	mux.HandleFunc("GET /api/v1/vehicle_data/upload_status/", s.uploadStatus)
	mux.HandleFunc("POST /api/v1/vehicle_data/finalize_upload/", s.finalize)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.auth = append(s.auth, r.Header.Get("Authorization"))
		s.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// put stores a chunk as if an earlier run had sent it.
func (s *fakeServer) put(vehicle, file string, total, index int32, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := uploadKey{vehicle, file}
	u := s.uploads[k]
	if u == nil {
		u = &fakeUpload{total: total, chunks: map[int32][]byte{}}
		s.uploads[k] = u
	}
	u.chunks[index] = data
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func problem(w http.ResponseWriter, status int, detail string) {
	writeJSON(w, status, map[string]any{"detail": detail})
}

func (s *fakeServer) uploadChunk(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.inflight++
	s.maxInflight = max(s.maxInflight, s.inflight)
	s.lengthKnown = s.lengthKnown && r.ContentLength > 0
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inflight--
		s.mu.Unlock()
	}()
	if s.inChunk != nil {
		s.inChunk()
	}
	if err := r.ParseMultipartForm(1 << 20); err != nil {
		problem(w, http.StatusBadRequest, "malformed form: "+err.Error())
		return
	}
	index, err1 := strconv.Atoi(r.FormValue("chunk_index"))
	total, err2 := strconv.Atoi(r.FormValue("total_chunks"))
	vehicle, file := r.FormValue("vehicle_id"), r.FormValue("file_name")
	part, _, err3 := r.FormFile("chunk")
	if err1 != nil || err2 != nil || err3 != nil || vehicle == "" || file == "" || total < 1 {
		problem(w, http.StatusBadRequest, "missing or bad field")
		return
	}
	data, err := io.ReadAll(part)
	if err != nil {
		problem(w, http.StatusBadRequest, err.Error())
		return
	}
	i := int32(index)

	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempts[i]++
	if s.failChunk != nil {
		if status := s.failChunk(i, s.attempts[i]); status != 0 {
			problem(w, status, fmt.Sprintf("injected %d for chunk %d", status, i))
			return
		}
	}
	if index >= total {
		problem(w, http.StatusBadRequest, "chunk_index must be less than total_chunks")
		return
	}
	k := uploadKey{vehicle, file}
	u := s.uploads[k]
	if u == nil {
		u = &fakeUpload{total: int32(total), chunks: map[int32][]byte{}}
		s.uploads[k] = u
	}
	if u.total != int32(total) {
		problem(w, http.StatusConflict, "total_chunks differs from earlier chunks")
		return
	}
	u.chunks[i] = data
	s.stored = append(s.stored, i)
	s.chunkLens[i] = len(data)
	writeJSON(w, http.StatusOK, client.ChunkReceived{
		Status: client.ChunkReceivedStatusChunkReceived, VehicleId: vehicle, FileName: file,
		ChunkIndex: i, TotalChunks: u.total, ReceivedChunks: int32(len(u.chunks)),
	})
}

func (s *fakeServer) uploadStatus(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	k := uploadKey{q.Get("vehicle_id"), q.Get("file_name")}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.uploads[k]
	if u == nil {
		problem(w, http.StatusNotFound, "Not found.")
		return
	}
	st := client.UploadStatus{VehicleId: k.vehicle, FileName: k.file, TotalChunks: u.total,
		ReceivedChunks: []int32{}, MissingChunks: []int32{}}
	for i := range u.total {
		if data, ok := u.chunks[i]; ok {
			st.ReceivedChunks = append(st.ReceivedChunks, i)
			st.Bytes += int64(len(data))
		} else {
			st.MissingChunks = append(st.MissingChunks, i)
		}
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *fakeServer) finalize(w http.ResponseWriter, r *http.Request) {
	var req client.FinalizeRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		problem(w, http.StatusBadRequest, "malformed JSON")
		return
	}
	if s.finalizeHook != nil && s.finalizeHook(w, req) {
		return
	}
	k := uploadKey{req.VehicleId, req.FileName}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.uploads[k]
	if u == nil {
		problem(w, http.StatusNotFound, "Not found.")
		return
	}
	if u.total != req.TotalChunks {
		problem(w, http.StatusConflict, "total_chunks differs")
		return
	}
	var content bytes.Buffer
	var missing []int32
	for i := range u.total {
		data, ok := u.chunks[i]
		if !ok {
			missing = append(missing, i)
		}
		content.Write(data)
	}
	if len(missing) > 0 {
		writeJSON(w, http.StatusConflict, client.UploadConflict{Detail: "chunks missing", MissingChunks: &missing})
		return
	}
	delete(s.uploads, k)
	s.finalized[k] = content.Bytes()
	rows := max(strings.Count(content.String(), "\n")-1, 0) // fixtures: header + one line per row
	writeJSON(w, http.StatusOK, client.FinalizeResult{
		Status: client.Processed, VehicleId: req.VehicleId, FileName: req.FileName,
		RowsReceived: int64(rows), RowsInserted: int64(rows),
	})
}

// snapshot returns copies of what the server recorded so far.
func (s *fakeServer) snapshot() (stored []int32, attempts map[int32]int, auth []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	stored = slices.Clone(s.stored)
	slices.Sort(stored)
	attempts = make(map[int32]int, len(s.attempts))
	for k, v := range s.attempts {
		attempts[k] = v
	}
	return stored, attempts, slices.Clone(s.auth)
}
