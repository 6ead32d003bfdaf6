package pgembed

import (
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
)

// serverUser is the OS user PostgreSQL must run as: PostgreSQL refuses to run as root.
const serverUser = "postgres"

// account is the OS user the server runs as when we are root; nil means "ourselves".
type account struct {
	name     string
	uid, gid int
}

// serverAccount returns nil when we are not root, else the postgres OS user.
func serverAccount() (*account, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(serverUser)
	if err != nil {
		return nil, fmt.Errorf("running as root, but PostgreSQL refuses to run as root and the OS user %q "+
			"to run it as cannot be found (%v): create it (useradd --system %s), run as an ordinary user, "+
			"or set DATABASE_URL", serverUser, err, serverUser)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return nil, fmt.Errorf("OS user %q has a non-numeric uid %q", serverUser, u.Uid)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return nil, fmt.Errorf("OS user %q has a non-numeric gid %q", serverUser, u.Gid)
	}
	return &account{name: serverUser, uid: uid, gid: gid}, nil
}

// chown gives path to the account; a nil account owns everything we create already.
func (a *account) chown(path string) error {
	if a == nil {
		return nil
	}
	if err := os.Lchown(path, a.uid, a.gid); err != nil {
		return fmt.Errorf("give %s to OS user %s: %w", path, a.name, err)
	}
	return nil
}

// chownTree gives a whole existing data directory to the account, for a directory that an
// earlier run (or a copy) left owned by someone else; PostgreSQL wants to own every file.
func (a *account) chownTree(dir string) error {
	if a == nil {
		return nil
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if uid, _, ok := fileOwner(fi); ok && uid == a.uid {
		return nil
	}
	return filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return a.chown(path)
	})
}

// checkSearchable fails early, with advice, when the account cannot reach dir because some
// parent directory is closed to it; initdb's own message would be obscure.
func (a *account) checkSearchable(dir string) error {
	if a == nil {
		return nil
	}
	for parent := filepath.Dir(dir); ; parent = filepath.Dir(parent) {
		fi, err := os.Stat(parent)
		if err != nil {
			return err
		}
		if !a.canSearch(fi) {
			return fmt.Errorf("PostgreSQL runs as OS user %s, which cannot enter %s (mode %v): "+
				"make it searchable (chmod o+x %s) or choose a data directory elsewhere",
				a.name, parent, fi.Mode().Perm(), parent)
		}
		if parent == filepath.Dir(parent) {
			return nil
		}
	}
}

func (a *account) canSearch(fi fs.FileInfo) bool {
	uid, gid, ok := fileOwner(fi)
	if !ok {
		return true // unknown: let initdb tell
	}
	perm := fi.Mode().Perm()
	switch {
	case uid == a.uid:
		return perm&0o100 != 0
	case gid == a.gid:
		return perm&0o010 != 0
	default:
		return perm&0o001 != 0
	}
}
