package main

import (
	"context"
	"fmt"
	"io"

	"github.com/vehicle-data/vehicle-data/internal/config"
	"github.com/vehicle-data/vehicle-data/internal/database"
)

func migrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: vehicle-data migrate up|down|status [--database-url URL]")
	}
	action := args[0]
	cfg, err := config.Load(args[1:], getenv, stderr)
	if err != nil {
		return err
	}
	logger := newLogger(stderr, cfg.LogLevel)
	pools, closeDB, err := openDatabase(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer closeDB()
	pool := pools.Ingest // migrations may run long: the pool without a statement timeout
	switch action {
	case "up":
		err = database.MigrateUp(ctx, pool)
	case "down":
		err = database.MigrateDown(ctx, pool)
	case "status":
	default:
		return fmt.Errorf("unknown migrate action %q: want up, down or status", action)
	}
	if err != nil {
		return err
	}
	// goose is quiet: show where the schema stands after every action.
	return database.MigrateStatus(ctx, pool, stdout)
}
