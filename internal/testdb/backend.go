package testdb

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/modules/postgres"

	"github.com/vehicle-data/vehicle-data/internal/pgembed"
)

// Environment variables that choose the server the tests use.
const (
	// EnvURL names an existing server to create the test databases on. Its user needs CREATEDB.
	EnvURL = "TEST_DATABASE_URL"
	// EnvBackend forces a backend: "container" or "embedded". A forced backend that cannot
	// start fails the tests instead of falling back.
	EnvBackend = "VEHICLE_DATA_TEST_BACKEND"
	// EnvImage is the PostgreSQL image of the container backend.
	EnvImage = "VEHICLE_DATA_TEST_PG_IMAGE"

	defaultImage = "postgres:16-alpine"
)

// backend is a running PostgreSQL server the test databases live on.
type backend struct {
	name string // for logs: which kind of server, and where
	url  string // an existing database to connect to for CREATE/DROP DATABASE
	stop func(context.Context) error
	took time.Duration // to start the server
}

// startBackend picks the server: the one forced by EnvBackend; else EnvURL; else a container;
// else, when that fails, an embedded server. logf reports the choice and any fallback.
func startBackend(ctx context.Context, logf func(format string, args ...any)) (*backend, error) {
	switch mode := os.Getenv(EnvBackend); mode {
	case "container":
		return startContainer(ctx)
	case "embedded":
		return startEmbedded(ctx)
	case "":
	default:
		return nil, fmt.Errorf("%s=%q: want container, embedded or unset", EnvBackend, mode)
	}
	if url := os.Getenv(EnvURL); url != "" {
		return &backend{name: EnvURL, url: url, stop: func(context.Context) error { return nil }}, nil
	}
	b, containerErr := startContainer(ctx)
	if containerErr == nil {
		return b, nil
	}
	logf("testdb: no PostgreSQL container (%v); falling back to embedded PostgreSQL", containerErr)
	b, embeddedErr := startEmbedded(ctx)
	if embeddedErr == nil {
		return b, nil
	}
	return nil, fmt.Errorf("no PostgreSQL server for the tests: install Docker, or PostgreSQL (on Debian: "+
		"apt-get install postgresql), or set %s to a server where the tests may create databases\n"+
		"container: %v\nembedded: %v", EnvURL, containerErr, embeddedErr)
}

func startContainer(ctx context.Context) (_ *backend, err error) {
	began := time.Now()
	if err := dockerHealthy(ctx); err != nil {
		return nil, fmt.Errorf("no Docker engine answers: %w", err)
	}
	image := cmp.Or(os.Getenv(EnvImage), defaultImage)
	runCtx, cancel := context.WithTimeout(ctx, 3*time.Minute) // a first pull may be slow
	defer cancel()
	ctr, err := postgres.Run(runCtx, image,
		postgres.BasicWaitStrategies(),
		// The module already sets fsync=off; durability is worthless for throwaway data.
		testcontainers.WithCmdArgs("-c", "synchronous_commit=off", "-c", "full_page_writes=off"),
	)
	defer func() {
		if err != nil && ctr != nil {
			_ = testcontainers.TerminateContainer(ctr)
		}
	}()
	if err != nil {
		return nil, fmt.Errorf("start container %s: %w", image, err)
	}
	url, err := ctr.ConnectionString(runCtx, "sslmode=disable")
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", image, err)
	}
	return &backend{
		name: "container " + image,
		url:  url,
		stop: func(ctx context.Context) error {
			return testcontainers.TerminateContainer(ctr, testcontainers.StopContext(ctx))
		},
		took: time.Since(began),
	}, nil
}

// dockerHealthy asks the engine for its info, as testcontainers' own skip helper does; the
// provider panics on some broken setups, which here is just another "no".
func dockerHealthy(ctx context.Context) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("docker provider: %v", r)
		}
	}()
	provider, err := testcontainers.NewDockerProvider()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return provider.Health(ctx) // closes the provider
}

func startEmbedded(ctx context.Context) (*backend, error) {
	began := time.Now()
	// The server lives until stop, not until some test's context ends.
	srv, err := pgembed.Start(context.WithoutCancel(ctx), pgembed.Options{Ephemeral: true})
	if err != nil {
		return nil, fmt.Errorf("embedded PostgreSQL: %w", err)
	}
	return &backend{
		name: "embedded PostgreSQL in " + srv.DataDir(),
		url:  srv.URL(),
		stop: srv.Stop,
		took: time.Since(began),
	}, nil
}
