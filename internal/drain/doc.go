// Package drain closes a server's listening socket without losing the connections the kernel
// has already set up for it.
//
// Closing a listening socket resets every connection in its accept queue: the handshake is
// done, the peer (a proxy, say) may have sent its request, and it reads a reset instead of an
// answer. A proxy retries a refused connection on another replica, but never a POST it has sent.
// CloseListener first stops new handshakes, lets the server accept what is queued, then closes.
package drain
