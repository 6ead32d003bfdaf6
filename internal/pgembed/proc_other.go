//go:build !linux

package pgembed

import (
	"errors"
	"io/fs"
	"syscall"
)

// procAttr cannot tie the child's life to ours outside Linux; Stop and ctx still end it.
func procAttr(a *account) (*syscall.SysProcAttr, error) {
	if a != nil {
		return nil, errors.New("running PostgreSQL as another OS user is only supported on Linux: run as an ordinary user")
	}
	return nil, nil
}

func fileOwner(fs.FileInfo) (uid, gid int, ok bool) { return 0, 0, false }

// dirInUse cannot look at other processes here, so PostgreSQL's own lock file check decides.
func dirInUse(string) bool { return true }
