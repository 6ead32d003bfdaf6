package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vehicle-data/vehicle-data/gen/client"
	"github.com/vehicle-data/vehicle-data/internal/config"
	"github.com/vehicle-data/vehicle-data/internal/database"
	"github.com/vehicle-data/vehicle-data/internal/ingest"
	"github.com/vehicle-data/vehicle-data/internal/records"
	"github.com/vehicle-data/vehicle-data/internal/server"
	"github.com/vehicle-data/vehicle-data/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// env is one running server on its own fresh database.
type env struct {
	URL    string
	Client *client.ClientWithResponses
	Pool   *pgxpool.Pool
}

// newEnv starts the whole HTTP stack over a fresh database; mutate tweaks the config.
func newEnv(t *testing.T, mutate ...func(*config.Config)) *env {
	t.Helper()
	pool := testdb.New(t)
	return newEnvOn(t, pool, mutate...)
}

// newEnvOn starts a server on an existing database (several servers may share one).
func newEnvOn(t *testing.T, pool *pgxpool.Pool, mutate ...func(*config.Config)) *env {
	t.Helper()
	cfg := config.Default()
	for _, m := range mutate {
		m(&cfg)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(server.LogHandler{Handler: slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})})
	}
	h := server.New(server.Options{
		Config:  cfg,
		Logger:  logger,
		Records: records.NewStore(pool, records.StoreOptions{}),
		Ingest: ingest.New(pool, ingest.Options{
			MaxChunkBytes:  cfg.MaxChunkBytes,
			MaxUploadBytes: cfg.MaxUploadBytes, MaxPendingUploadBytes: cfg.MaxPendingUploadBytes,
		}),
		Ready: func(ctx context.Context) error { return database.CheckReady(ctx, pool) },
	})
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	c, err := client.NewClientWithResponses(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	return &env{URL: ts.URL, Client: c, Pool: pool}
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func ptr[T any](v T) *T { return &v }

// do sends a raw request, for what the typed client cannot express.
func (e *env) do(t *testing.T, method, path, contentType string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, e.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// problem decodes an error body and checks it has a detail.
func problem(t *testing.T, body []byte) client.Problem {
	t.Helper()
	var p client.Problem
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("error body is not JSON: %v: %s", err, body)
	}
	if p.Detail == "" {
		t.Fatalf("error body has no detail: %s", body)
	}
	return p
}

// fieldNames lists the fields an error body names.
func fieldNames(p client.Problem) []string {
	var out []string
	if p.Errors != nil {
		for _, e := range *p.Errors {
			out = append(out, e.Field)
		}
	}
	return out
}

// seed inserts records straight through the API and returns them as stored.
func (e *env) seed(t *testing.T, in ...client.VehicleDataInput) []client.VehicleData {
	t.Helper()
	out := make([]client.VehicleData, 0, len(in))
	for _, r := range in {
		resp, err := e.Client.CreateVehicleDataWithResponse(t.Context(), r)
		if err != nil {
			t.Fatal(err)
		}
		if resp.JSON201 == nil {
			t.Fatalf("seed %+v: status %d: %s", r, resp.StatusCode(), resp.Body)
		}
		out = append(out, *resp.JSON201)
	}
	return out
}

func rec(vehicle string, ts time.Time, speed *float64, soc int32, shift *string) client.VehicleDataInput {
	return client.VehicleDataInput{
		VehicleId: vehicle, Timestamp: ts, Speed: speed, Odometer: 1000, Soc: soc, Elevation: 10, ShiftState: shift,
	}
}
