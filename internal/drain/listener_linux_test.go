package drain

import (
	"bufio"
	"errors"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"
)

// queue opens n connections to ln that nobody accepts yet, each with its request sent.
func queue(t *testing.T, ln net.Listener, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.Write([]byte("ping\n")); err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		q, err := queued(ln)
		if err != nil {
			t.Fatal(err)
		}
		if q == n {
			return conns
		}
		if time.Now().After(deadline) {
			t.Fatalf("accept queue holds %d connections, want %d", q, n)
		}
	}
}

// serve accepts slowly, as a busy server does, and answers each request line with "pong".
func serve(ln net.Listener) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			time.Sleep(10 * time.Millisecond)
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				if _, err := bufio.NewReader(c).ReadString('\n'); err == nil {
					_, _ = c.Write([]byte("pong\n"))
				}
			})
		}
	})
	return &wg
}

// answered counts the connections that got their answer, and those reset.
func answered(t *testing.T, conns []net.Conn) (ok, reset int) {
	t.Helper()
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		switch {
		case err == nil && line == "pong\n":
			ok++
		case errors.Is(err, syscall.ECONNRESET):
			reset++
		default:
			t.Errorf("read %q, %v: want pong or a reset", line, err)
		}
	}
	return ok, reset
}

func TestCloseListener(t *testing.T) {
	const n = 8
	for _, tc := range []struct {
		name      string
		close     func(net.Listener) error
		wantReset bool
	}{
		// The failure CloseListener exists for: Close resets what is queued.
		{"plain close", func(ln net.Listener) error { return ln.Close() }, true},
		{"CloseListener", func(ln net.Listener) error {
			q, err := CloseListener(ln, 5*time.Second)
			if q != n {
				t.Errorf("CloseListener reported %d queued, want %d", q, n)
			}
			return err
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := Listen(t.Context(), "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			conns := queue(t, ln, n)
			// CloseListener needs the server accepting while it waits; a plain close is shown
			// against a server that had not got round to accepting yet (with the accept loop
			// already running, a stalled test could see it take all eight first).
			var wg *sync.WaitGroup
			if !tc.wantReset {
				wg = serve(ln)
			}
			if err := tc.close(ln); err != nil {
				t.Fatal(err)
			}
			if tc.wantReset {
				wg = serve(ln)
			}
			ok, reset := answered(t, conns)
			wg.Wait()
			if tc.wantReset && reset == 0 {
				t.Errorf("%d answered, none reset: the test no longer shows the loss", ok)
			}
			if !tc.wantReset && ok != n {
				t.Errorf("%d of %d answered, %d reset", ok, n, reset)
			}
			// Closed: a new connection is refused, which a proxy retries elsewhere.
			if c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
				c.Close()
				t.Error("connected after close")
			} else if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("dial after close: %v, want connection refused", err)
			}
		})
	}
}

// While blocked, a new connection gets no answer to its SYN, and an established one still works.
func TestBlockSYN(t *testing.T) {
	ln, err := Listen(t.Context(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conns := queue(t, ln, 1)
	if err := blockSYN(ln); err != nil {
		t.Fatal(err)
	}
	_, err = net.DialTimeout("tcp", ln.Addr().String(), 300*time.Millisecond)
	if ne, ok := errors.AsType[net.Error](err); !ok || !ne.Timeout() {
		t.Fatalf("dial while blocked: %v, want a timeout", err)
	}
	wg := serve(ln)
	if ok, _ := answered(t, conns); ok != 1 {
		t.Error("the connection queued before the block got no answer")
	}
	ln.Close()
	wg.Wait()
}
