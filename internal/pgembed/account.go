package pgembed

import (
	"errors"
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

// UnreachableError is a data directory the server's OS user cannot reach, because a folder
// above it is closed to that user.
type UnreachableError struct {
	User    string      // the server's OS user
	DataDir string      // the data directory asked for
	Closed  string      // the folder above it that User cannot enter
	Mode    fs.FileMode // Closed's permission bits
	Owner   string      // Closed's owner
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("PostgreSQL runs as OS user %s, which cannot enter %s (mode %#o, owned by %s) "+
		"to reach the data directory %s: choose a data directory that user can reach",
		e.User, e.Closed, e.Mode, e.Owner, e.DataDir)
}

// Reason says in a few words why the data directory is out of reach.
func (e *UnreachableError) Reason() string {
	return fmt.Sprintf("the %s user cannot enter %s", e.User, e.Closed)
}

// checkSearchable fails early with an *UnreachableError when the account cannot reach dir
// because some folder above it is closed to it; initdb's own message would be obscure.
// Folders that do not exist yet are skipped: we create them searchable (mkdirParents).
func (a *account) checkSearchable(dir string) error {
	if a == nil {
		return nil
	}
	for parent := filepath.Dir(dir); ; parent = filepath.Dir(parent) {
		fi, err := os.Stat(parent)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err == nil && !a.canSearch(fi) {
			return &UnreachableError{User: a.name, DataDir: dir, Closed: parent, Mode: fi.Mode().Perm(), Owner: ownerName(fi)}
		}
		if parent == filepath.Dir(parent) {
			return nil
		}
	}
}

func ownerName(fi fs.FileInfo) string {
	uid, _, ok := fileOwner(fi)
	if !ok {
		return "?"
	}
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return u.Username
	}
	return strconv.Itoa(uid)
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
