package pgembed

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// debianBinDirs matches the versioned directories of Debian's postgresql packages; a variable
// so that tests can hide them.
var debianBinDirs = "/usr/lib/postgresql/*/bin"

// binaries are the two PostgreSQL programs the server needs, and pg_basebackup from the same
// installation when it has one (for a standby, see Options.Primary).
type binaries struct {
	initdb     string
	postgres   string
	basebackup string // empty when missing
}

// errNoBinaries tells the user what to do, since it is the first error a fresh machine hits.
var errNoBinaries = errors.New("no PostgreSQL server binaries (initdb, postgres) found via pg_config, PATH or " +
	"/usr/lib/postgresql/*/bin: install PostgreSQL (on Debian: apt-get install postgresql) " +
	"or set DATABASE_URL to an existing database")

// findBinaries looks where PostgreSQL installs put initdb and postgres, in order: the bindir
// that pg_config reports, PATH, then the newest Debian versioned directory.
func findBinaries(ctx context.Context) (binaries, error) {
	if dir := pgConfigBindir(ctx); dir != "" {
		if b, ok := binariesIn(dir); ok {
			return b, nil
		}
	}
	if initdb, err := exec.LookPath("initdb"); err == nil {
		if postgres, err := exec.LookPath("postgres"); err == nil {
			b := binaries{initdb: initdb, postgres: postgres}
			if bb, err := exec.LookPath("pg_basebackup"); err == nil {
				b.basebackup = bb
			}
			return b, nil
		}
	}
	dirs, _ := filepath.Glob(debianBinDirs)
	sortByVersionDesc(dirs)
	for _, dir := range dirs {
		if b, ok := binariesIn(dir); ok {
			return b, nil
		}
	}
	return binaries{}, errNoBinaries
}

func pgConfigBindir(ctx context.Context) string {
	path, err := exec.LookPath("pg_config")
	if err != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--bindir").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func binariesIn(dir string) (binaries, bool) {
	b := binaries{initdb: filepath.Join(dir, "initdb"), postgres: filepath.Join(dir, "postgres")}
	if bb := filepath.Join(dir, "pg_basebackup"); isExecutable(bb) {
		b.basebackup = bb
	}
	return b, isExecutable(b.initdb) && isExecutable(b.postgres)
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// sortByVersionDesc orders /usr/lib/postgresql/<version>/bin paths newest first, comparing
// versions as numbers so that 9.6 sorts below 10.
func sortByVersionDesc(dirs []string) {
	version := func(dir string) []int {
		var v []int
		for _, part := range strings.Split(filepath.Base(filepath.Dir(dir)), ".") {
			n, err := strconv.Atoi(part)
			if err != nil {
				n = -1
			}
			v = append(v, n)
		}
		return v
	}
	sort.SliceStable(dirs, func(i, j int) bool {
		a, b := version(dirs[i]), version(dirs[j])
		for k := 0; k < len(a) && k < len(b); k++ {
			if a[k] != b[k] {
				return a[k] > b[k]
			}
		}
		return len(a) > len(b)
	})
}
