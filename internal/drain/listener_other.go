//go:build !linux

package drain

import (
	"net"
	"time"
)

// CloseListener closes ln. Only Linux has the means to stop new handshakes first; elsewhere
// connections queued but not yet accepted are reset, as with a plain Close.
func CloseListener(ln net.Listener, _ time.Duration) (int, error) {
	return 0, ln.Close()
}
