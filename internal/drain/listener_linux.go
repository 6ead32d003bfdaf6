package drain

import (
	"errors"
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// settle is how long a handshake begun before blockSYN (SYN-ACK sent, ACK on its way) gets to
// complete and join the accept queue: a round trip on the local network, with a wide margin.
const settle = 100 * time.Millisecond

// CloseListener closes ln once the connections queued on it have been accepted, or after limit.
// It returns the most it saw queued from then until the close. Connections attempted meanwhile
// see their SYN dropped; the retransmission a second later is refused (the listener is closed by
// then), which a proxy retries on another replica whatever the method.
func CloseListener(ln net.Listener, limit time.Duration) (int, error) {
	if err := blockSYN(ln); err != nil {
		return 0, errors.Join(err, ln.Close())
	}
	most, _ := queued(ln)
	time.Sleep(settle)
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		q, err := queued(ln)
		if err != nil || q == 0 {
			break
		}
		most = max(most, q)
	}
	return most, ln.Close()
}

// TCP header flag bits (RFC 9293).
const (
	flagSYN = 0x02
	flagACK = 0x10
)

// synOnly is a classic BPF socket filter that drops TCP segments with SYN set and ACK clear (new
// connections) and keeps the rest: the ACKs that complete handshakes already begun still reach
// the listener. A TCP socket's filter sees the segment from its TCP header (byte 13: flags).
var synOnly = []unix.SockFilter{
	{Code: unix.BPF_LD | unix.BPF_B | unix.BPF_ABS, K: 13},
	{Code: unix.BPF_ALU | unix.BPF_AND | unix.BPF_K, K: flagSYN | flagACK},
	{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: flagSYN, Jt: 0, Jf: 1},
	{Code: unix.BPF_RET | unix.BPF_K, K: 0},
	{Code: unix.BPF_RET | unix.BPF_K, K: 0xffffffff},
}

// blockSYN stops the kernel from starting new connections on ln.
func blockSYN(ln net.Listener) error {
	return control(ln, func(fd int) error {
		prog := unix.SockFprog{Len: uint16(len(synOnly)), Filter: &synOnly[0]}
		return unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog)
	})
}

// queued returns the length of ln's accept queue: for a listening socket, TCP_INFO reports it
// as tcpi_unacked.
func queued(ln net.Listener) (int, error) {
	var n int
	err := control(ln, func(fd int) error {
		info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
		if err == nil {
			n = int(info.Unacked)
		}
		return err
	})
	return n, err
}

func control(ln net.Listener, f func(fd int) error) error {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return errors.New("drain: listener has no file descriptor")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = f(int(fd)) }); err != nil {
		return err
	}
	return ferr
}
