package pgembed

import (
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// procAttr runs a child as the account and has the kernel stop it when we die, so that a
// killed vehicle-data never leaves a server behind. SIGINT is PostgreSQL's fast shutdown:
// unlike SIGTERM (smart shutdown) it does not wait for other clients, such as a psql, to leave.
func procAttr(a *account) (*syscall.SysProcAttr, error) {
	attr := &syscall.SysProcAttr{Pdeathsig: syscall.SIGINT}
	if a != nil {
		attr.Credential = &syscall.Credential{Uid: uint32(a.uid), Gid: uint32(a.gid)}
	}
	return attr, nil
}

func fileOwner(fi fs.FileInfo) (uid, gid int, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return int(st.Uid), int(st.Gid), true
}

// dirInUse reports whether any other process has dir as its working directory. Every
// PostgreSQL process (postmaster and backends) runs inside its data directory, so this tells
// whether a server, or an orphaned backend of a killed one, still uses it. When /proc cannot
// answer it says true, leaving the decision to PostgreSQL.
func dirInUse(dir string) bool {
	want, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return true
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return true
	}
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		// Processes of other users are unreadable without root; they cannot be inside a 0700
		// directory we own either.
		if cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd")); err == nil && cwd == want {
			return true
		}
	}
	return false
}
