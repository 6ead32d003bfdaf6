package drain

import (
	"context"
	"net"
)

// Listen opens a TCP listener on addr for CloseListener to close. It is plain TCP: Go listens
// with Multipath TCP by default where the kernel has it, and an MPTCP socket takes no socket
// filter (SO_ATTACH_FILTER fails with EOPNOTSUPP). A server behind a proxy gains nothing from
// MPTCP's several paths.
func Listen(ctx context.Context, addr string) (net.Listener, error) {
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	return lc.Listen(ctx, "tcp", addr)
}
