package uploader

import (
	"io"

	"golang.org/x/term"
)

// IsTerminal reports whether w is a terminal, so callers can set Options.IsTerminal
// for their progress writer (usually os.Stderr).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}
