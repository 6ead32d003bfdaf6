package config

import (
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLoad(t *testing.T) {
	tokens := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(tokens, []byte("t3\n# comment\n\n t4 \n"), 0o600)
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(t *testing.T, c Config)
		wantErr string
	}{
		{name: "defaults", check: func(t *testing.T, c Config) {
			if c.Addr != ":8080" || c.DatabaseURL != "" || !c.Migrate || c.MaxChunkBytes != 16<<20 || c.UploadMaxAge != 24*time.Hour || c.XLSXRowLimit != 1048575 || len(c.APITokens) != 0 {
				t.Errorf("got %+v", c)
			}
		}},
		{name: "env", env: map[string]string{"ADDR": ":9", "DATABASE_URL": "postgres://x", "MAX_CHUNK_BYTES": "1MiB", "API_TOKENS": "a, b,", "MIGRATE": "false"},
			check: func(t *testing.T, c Config) {
				if c.Addr != ":9" || c.DatabaseURL != "postgres://x" || c.MaxChunkBytes != 1<<20 || !slices.Equal(c.APITokens, []string{"a", "b"}) || c.Migrate {
					t.Errorf("got %+v", c)
				}
			}},
		{name: "flag beats env", args: []string{"--addr", ":7", "--xlsx-row-limit", "10"}, env: map[string]string{"ADDR": ":9"},
			check: func(t *testing.T, c Config) {
				if c.Addr != ":7" || c.XLSXRowLimit != 10 {
					t.Errorf("got %+v", c)
				}
			}},
		{name: "tokens file", args: []string{"--api-tokens", "t1", "--api-tokens-file", tokens},
			check: func(t *testing.T, c Config) {
				if !slices.Equal(c.APITokens, []string{"t1", "t3", "t4"}) {
					t.Errorf("tokens: %q", c.APITokens)
				}
			}},
		{name: "default data dir may move", check: func(t *testing.T, c Config) {
			if c.DataDir != ".data/postgres" || c.DataDirFallback != "/var/lib/vehicle-data" {
				t.Errorf("DataDir %q, DataDirFallback %q; want the default and /var/lib/vehicle-data", c.DataDir, c.DataDirFallback)
			}
		}},
		{name: "data dir flag is not moved", args: []string{"--data-dir", ".data/postgres"}, check: func(t *testing.T, c Config) {
			if c.DataDirFallback != "" {
				t.Errorf("DataDirFallback = %q with --data-dir, want empty", c.DataDirFallback)
			}
		}},
		{name: "DATA_DIR is not moved", env: map[string]string{"DATA_DIR": "/srv/pg"}, check: func(t *testing.T, c Config) {
			if c.DataDir != "/srv/pg" || c.DataDirFallback != "" {
				t.Errorf("DataDir %q, DataDirFallback %q; want /srv/pg and empty", c.DataDir, c.DataDirFallback)
			}
		}},
		{name: "reads on the primary by default", check: func(t *testing.T, c Config) {
			if c.ReadDatabaseURL != "" || c.MaxReadLag != time.Second {
				t.Errorf("ReadDatabaseURL %q, MaxReadLag %v; want empty and 1s", c.ReadDatabaseURL, c.MaxReadLag)
			}
		}},
		{name: "read standby", args: []string{"--max-read-lag", "250ms"}, env: map[string]string{"READ_DATABASE_URL": "postgres://standby", "MAX_READ_LAG": "5s"},
			check: func(t *testing.T, c Config) {
				if c.ReadDatabaseURL != "postgres://standby" || c.MaxReadLag != 250*time.Millisecond {
					t.Errorf("ReadDatabaseURL %q, MaxReadLag %v; want postgres://standby and 250ms", c.ReadDatabaseURL, c.MaxReadLag)
				}
			}},
		{name: "zero read lag", env: map[string]string{"MAX_READ_LAG": "0s"}, wantErr: "max-read-lag"},
		{name: "read lag under 100ms", args: []string{"--max-read-lag", "99ms"}, wantErr: "max-read-lag must be at least 100ms"},
		{name: "bad size", args: []string{"--max-chunk-bytes", "lots"}, wantErr: "not a size"},
		{name: "bad env duration", env: map[string]string{"UPLOAD_MAX_AGE": "1 day"}, wantErr: "UPLOAD_MAX_AGE"},
		{name: "bad log level", args: []string{"--log-level", "loud"}, wantErr: "log level"},
		{name: "zero chunk", args: []string{"--max-chunk-bytes", "0"}, wantErr: "max chunk bytes"},
		{name: "chunk over what a bytea holds", args: []string{"--max-chunk-bytes", "1GiB"}, wantErr: "max chunk bytes"},
		{name: "zero xlsx limit", args: []string{"--xlsx-row-limit", "0"}, wantErr: "xlsx row limit"},
		{name: "upload quotas default", check: func(t *testing.T, c Config) {
			if c.MaxUploadBytes != 2<<30 || c.MaxPendingUploadBytes != 8<<30 {
				t.Errorf("quotas: %d per upload, %d pending; want 2GiB, 8GiB", c.MaxUploadBytes, c.MaxPendingUploadBytes)
			}
		}},
		{name: "upload quotas from env and flags", args: []string{"--max-pending-upload-bytes", "3GiB"},
			env: map[string]string{"MAX_UPLOAD_BYTES": "1GiB", "MAX_PENDING_UPLOAD_BYTES": "100GiB"},
			check: func(t *testing.T, c Config) {
				if c.MaxUploadBytes != 1<<30 || c.MaxPendingUploadBytes != 3<<30 {
					t.Errorf("quotas: %d per upload, %d pending; want 1GiB, 3GiB", c.MaxUploadBytes, c.MaxPendingUploadBytes)
				}
			}},
		{name: "upload quotas equal to the chunk limit", args: []string{"--max-chunk-bytes", "1MiB", "--max-upload-bytes", "1MiB", "--max-pending-upload-bytes", "1MiB"},
			check: func(t *testing.T, c Config) {
				if c.MaxUploadBytes != 1<<20 || c.MaxPendingUploadBytes != 1<<20 {
					t.Errorf("got %+v", c)
				}
			}},
		{name: "bad upload quota", env: map[string]string{"MAX_UPLOAD_BYTES": "big"}, wantErr: "MAX_UPLOAD_BYTES"},
		{name: "upload quota below the chunk limit", args: []string{"--max-upload-bytes", "1MiB"}, wantErr: "max upload bytes (1048576) must be >= max chunk bytes (16777216)"},
		{name: "pending quota below the upload quota", args: []string{"--max-pending-upload-bytes", "1GiB"}, wantErr: "max pending upload bytes (1073741824) must be >= max upload bytes (2147483648)"},
		{name: "stray argument", args: []string{"extra"}, wantErr: "unexpected arguments"},
		{name: "missing tokens file", args: []string{"--api-tokens-file", "/nonexistent/tokens"}, wantErr: "api tokens file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(tt.args, func(k string) string { return tt.env[k] }, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"1048576": 1 << 20, "16MiB": 16 << 20, "1 KiB": 1 << 10, "2MB": 2_000_000, "1_000": 1000, "7B": 7} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("%q: got %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1.5MiB", "MiB", "1 TB"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

func TestDefaultDBConns(t *testing.T) {
	for _, tc := range []struct{ cores, want int }{{1, 4}, {2, 4}, {3, 6}, {8, 16}} {
		if got := defaultDBConns(tc.cores); got != tc.want {
			t.Errorf("defaultDBConns(%d) = %d, want %d", tc.cores, got, tc.want)
		}
	}
	if got, want := Default().Limits.DBConns, defaultDBConns(runtime.GOMAXPROCS(0)); got != want {
		t.Errorf("Default().Limits.DBConns = %d, want %d (GOMAXPROCS %d)", got, want, runtime.GOMAXPROCS(0))
	}
}
