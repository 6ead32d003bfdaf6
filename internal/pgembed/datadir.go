package pgembed

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// originFile, beside a fallback data directory, holds the path that directory stands in for.
const originFile = "origin"

// chooseDataDir returns dir when the account can reach it. Otherwise, when fallbackRoot is
// set, it returns the fallback data directory for dir under fallbackRoot and why dir was not
// used; when it is not, the *UnreachableError. dir is absolute.
func (a *account) chooseDataDir(dir, fallbackRoot string) (chosen, reason string, err error) {
	err = a.checkSearchable(dir)
	var ue *UnreachableError
	if err == nil || fallbackRoot == "" || !errors.As(err, &ue) {
		return dir, "", err
	}
	chosen = fallbackDataDir(fallbackRoot, dir)
	if err := a.checkSearchable(chosen); err != nil {
		return "", "", fmt.Errorf("%s, and the fallback %s is out of reach too: %w", ue.Reason(), chosen, err)
	}
	reason = ue.Reason()
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err == nil {
		reason += "; the cluster in " + dir + " is left alone"
	}
	return chosen, reason, nil
}

// fallbackDataDir is root/<hash of dir>/postgres: the same folder for the same dir on every
// run, another one for another dir. Symbolic links in dir are resolved first, so a checkout
// reached through a link finds the same cluster.
func fallbackDataDir(root, dir string) string {
	sum := sha256.Sum256([]byte(resolveExisting(dir)))
	return filepath.Join(root, hex.EncodeToString(sum[:6]), "postgres")
}

// resolveExisting resolves the symbolic links in the longest existing prefix of the absolute
// path dir; the data directory itself need not exist yet.
func resolveExisting(dir string) string {
	var rest []string
	for p := dir; ; p = filepath.Dir(p) {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Join(append([]string{r}, rest...)...)
		}
		if p == filepath.Dir(p) {
			return dir
		}
		rest = append([]string{filepath.Base(p)}, rest...)
	}
}

// claimFallback records beside the fallback data directory the path it stands in for, so
// that an operator can tell which checkout each folder under the fallback root belongs to,
// and so that another path with the same short hash is refused rather than given this cluster.
func claimFallback(dataDir, origin string) error {
	origin = resolveExisting(origin) // as fallbackDataDir hashed it
	parent := filepath.Dir(dataDir)
	if err := mkdirParents(parent); err != nil {
		return fmt.Errorf("fallback data directory: %w", err)
	}
	path := filepath.Join(parent, originFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil && string(b) == origin+"\n":
		return nil
	case err == nil:
		return fmt.Errorf("fallback data directory %s stands in for %s (see %s), not for %s: "+
			"choose a data directory yourself", dataDir, strings.TrimSpace(string(b)), path, origin)
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("fallback data directory: %w", err)
	}
	if err := os.WriteFile(path, []byte(origin+"\n"), 0o644); err != nil {
		return fmt.Errorf("fallback data directory: %w", err)
	}
	return nil
}
