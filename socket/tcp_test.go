package socket_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/net/nettest"

	"ustack/link/pipe"
	"ustack/proto"
	"ustack/socket"
	"ustack/stack"
)

// The TCP tests run on two real stacks joined by a pipe:
//
//	A eth0 10.1.0.1/24 ─── 10.1.0.2/24 eth0 B
var (
	tcpA = netip.MustParseAddr("10.1.0.1")
	tcpB = netip.MustParseAddr("10.1.0.2")
)

// tcpNet builds the two stacks, closed when the test ends.
func tcpNet(t testing.TB) (a, b *stack.Stack) {
	t.Helper()
	ea, eb := pipe.New(pipe.Config{Seed: 0x10})
	a = stack.New(stack.Options{Name: "A"})
	b = stack.New(stack.Options{Name: "B"})
	t.Cleanup(func() { a.Close(); b.Close() })
	for _, x := range []struct {
		s    *stack.Stack
		ep   *pipe.Endpoint
		addr netip.Addr
	}{{a, ea, tcpA}, {b, eb, tcpB}} {
		if _, err := x.s.AddInterface("eth0", x.ep); err != nil {
			t.Fatal(err)
		}
		if err := x.s.AddAddress("eth0", netip.PrefixFrom(x.addr, 24)); err != nil {
			t.Fatal(err)
		}
	}
	return a, b
}

// tcpListen listens on B at port, closed when the test ends.
func tcpListen(t testing.TB, b *stack.Stack, port uint16) *socket.TCPListener {
	t.Helper()
	ln, err := socket.ListenTCP(b, netip.AddrPortFrom(tcpB, port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// tcpConnect dials from A to ln and accepts: the client and server ends.
func tcpConnect(t testing.TB, a *stack.Stack, ln *socket.TCPListener) (client, server *socket.TCPConn) {
	t.Helper()
	c, err := socket.DialTCP(a, netip.AddrPort{}, ln.Addr().(*net.TCPAddr).AddrPort())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.AcceptTCP()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c, s
}

// TestNettestConn is x/net's conformance suite for net.Conn. It runs on
// the real clock: the suite's deadlines are real ones.
func TestNettestConn(t *testing.T) {
	a, b := tcpNet(t)
	ln := tcpListen(t, b, 0)
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		c, err := socket.Dial(a, "tcp", ln.Addr().String())
		if err != nil {
			return nil, nil, nil, err
		}
		s, err := ln.Accept()
		if err != nil {
			c.Close()
			return nil, nil, nil, err
		}
		return c, s, func() { c.Close(); s.Close() }, nil
	})
}

func TestTCPAddrs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := tcpNet(t)
		ln := tcpListen(t, b, 8080)
		if got := ln.Addr().String(); got != "10.1.0.2:8080" {
			t.Errorf("listener Addr = %s", got)
		}
		c, s := tcpConnect(t, a, ln)
		cl, ok := c.LocalAddr().(*net.TCPAddr)
		if !ok || cl.AddrPort().Addr() != tcpA || cl.Port == 0 {
			t.Errorf("client LocalAddr = %v", c.LocalAddr())
		}
		if got := c.RemoteAddr().String(); got != "10.1.0.2:8080" {
			t.Errorf("client RemoteAddr = %s", got)
		}
		if s.RemoteAddr().String() != c.LocalAddr().String() || s.LocalAddr().String() != c.RemoteAddr().String() {
			t.Errorf("server sees %v -> %v, client %v -> %v", s.RemoteAddr(), s.LocalAddr(), c.LocalAddr(), c.RemoteAddr())
		}
	})
}

func TestTCPHalfClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := tcpNet(t)
		c, s := tcpConnect(t, a, tcpListen(t, b, 7))
		if _, err := c.Write([]byte("request")); err != nil {
			t.Fatal(err)
		}
		if err := c.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(s)
		if err != nil || string(got) != "request" {
			t.Fatalf("server read %q, %v", got, err)
		}
		// EOF is io.EOF itself, as net returns it, and stays.
		if n, err := s.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Errorf("Read after EOF = %d, %v; want 0, io.EOF", n, err)
		}
		// The other direction still works.
		if _, err := s.Write([]byte("response")); err != nil {
			t.Fatal(err)
		}
		s.Close()
		got, err = io.ReadAll(c)
		if err != nil || string(got) != "response" {
			t.Errorf("client read %q, %v", got, err)
		}
		// Writing after CloseWrite: EPIPE.
		_, err = c.Write([]byte("more"))
		checkOpErr(t, err, "write", syscall.EPIPE)
	})
}

func TestTCPDialErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, _ := tcpNet(t)

		// Nobody listens: the peer answers with RST.
		_, err := socket.Dial(a, "tcp", "10.1.0.2:9")
		oe := checkOpErr(t, err, "dial", syscall.ECONNREFUSED)
		if got, want := err.Error(), "dial tcp 10.1.0.2:9: connect: connection refused"; got != want {
			t.Errorf("error %q, want %q", got, want)
		}
		if oe.Source != nil {
			t.Errorf("Source = %v, want nil without a LocalAddr", oe.Source)
		}

		// Nobody is there: the handshake times out at the Dialer's
		// Timeout (before neighbour resolution gives up), aborting it.
		start := time.Now()
		d := &socket.Dialer{Stack: a, Timeout: time.Second}
		_, err = d.Dial("tcp", "10.1.0.99:80")
		checkTimeout(t, err, "dial")
		if !errors.Is(err, context.DeadlineExceeded) || err.Error() != "dial tcp 10.1.0.99:80: i/o timeout" {
			t.Errorf("timeout error %q does not match context.DeadlineExceeded or read as net's", err)
		}
		if d := time.Since(start); d != time.Second {
			t.Errorf("dial took %v, want 1s", d)
		}

		// A Deadline earlier than the Timeout wins.
		start = time.Now()
		d = &socket.Dialer{Stack: a, Timeout: time.Minute, Deadline: start.Add(500 * time.Millisecond)}
		_, err = d.Dial("tcp", "10.1.0.98:80")
		checkTimeout(t, err, "dial")
		if d := time.Since(start); d != 500*time.Millisecond {
			t.Errorf("dial took %v, want 500ms", d)
		}

		// Cancelling the context aborts the handshake.
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(250*time.Millisecond, cancel)
		start = time.Now()
		_, err = (&socket.Dialer{Stack: a}).DialContext(ctx, "tcp", "10.1.0.97:80")
		checkOpErr(t, err, "dial", context.Canceled)
		if d := time.Since(start); d != 250*time.Millisecond {
			t.Errorf("cancelled dial took %v, want 250ms", d)
		}
		// The aborted handshakes left no connection behind.
		a.TCP().Sockets(func(si proto.SocketInfo) {
			t.Errorf("socket left after the failed dials: %+v", si)
		})
		// An already expired context fails at once.
		_, err = (&socket.Dialer{Stack: a}).DialContext(ctx, "tcp", "10.1.0.2:80")
		checkOpErr(t, err, "dial", context.Canceled)

		// Bad arguments.
		for _, tc := range []struct{ network, addr, want string }{
			{"tcp", "10.1.0.2", "dial tcp: address 10.1.0.2: missing port in address"},
			{"tcp", "example.com:80", "dial tcp: address example.com: non-IP host (ustack does not resolve names)"},
			{"tcp6", "10.1.0.2:80", "dial tcp6: address 10.1.0.2:80: no suitable address found"},
			{"sctp", "10.1.0.2:80", "dial sctp: unknown network sctp"},
		} {
			if _, err := socket.Dial(a, tc.network, tc.addr); err == nil || err.Error() != tc.want {
				t.Errorf("Dial(%s, %s) = %v, want %q", tc.network, tc.addr, err, tc.want)
			}
		}
		la := &net.UDPAddr{IP: net.IPv4(10, 1, 0, 1)}
		if _, err := (&socket.Dialer{Stack: a, LocalAddr: la}).Dial("tcp", "10.1.0.2:80"); err == nil {
			t.Error("dial with a UDP local address succeeded")
		}
	})
}

func TestTCPDialLocalAddr(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := tcpNet(t)
		ln := tcpListen(t, b, 80)
		la := &net.TCPAddr{IP: net.IPv4(10, 1, 0, 1), Port: 40000}
		c, err := (&socket.Dialer{Stack: a, LocalAddr: la}).Dial("tcp", "10.1.0.2:80")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if got := s.RemoteAddr().String(); got != "10.1.0.1:40000" {
			t.Errorf("server sees the client at %s", got)
		}
		// The same 4-tuple again is in use.
		_, err = (&socket.Dialer{Stack: a, LocalAddr: la}).Dial("tcp", "10.1.0.2:80")
		checkOpErr(t, err, "dial", syscall.EADDRINUSE)
	})
}

func TestTCPListenErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, b := tcpNet(t)
		tcpListen(t, b, 80)
		_, err := socket.Listen(b, "tcp", "10.1.0.2:80")
		checkOpErr(t, err, "listen", syscall.EADDRINUSE)
		if got, want := err.Error(), "listen tcp 10.1.0.2:80: bind: address already in use"; got != want {
			t.Errorf("error %q, want %q", got, want)
		}
		_, err = socket.Listen(b, "tcp", "10.9.9.9:80")
		checkOpErr(t, err, "listen", syscall.EADDRNOTAVAIL)
		if _, err := socket.Listen(b, "udp", ":80"); err == nil || err.Error() != "listen udp: unknown network udp" {
			t.Errorf("Listen(udp) = %v", err)
		}
		ln, err := socket.Listen(b, "tcp", ":0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		if ap := ln.Addr().(*net.TCPAddr).AddrPort(); !ap.Addr().IsUnspecified() || ap.Port() == 0 {
			t.Errorf("ephemeral listener at %v", ap)
		}
	})
}

func TestTCPAccept(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, b := tcpNet(t)
		ln := tcpListen(t, b, 80)

		// The deadline bounds Accept.
		start := time.Now()
		ln.SetDeadline(start.Add(2 * time.Second))
		_, err := ln.Accept()
		checkTimeout(t, err, "accept")
		if d := time.Since(start); d != 2*time.Second {
			t.Errorf("Accept returned after %v, want 2s", d)
		}
		var oe *net.OpError
		if errors.As(err, &oe); oe.Source != nil || oe.Addr.String() != "10.1.0.2:80" {
			t.Errorf("accept error names %v and %v", oe.Source, oe.Addr)
		}

		// Close wakes a blocked Accept with net.ErrClosed.
		ln.SetDeadline(time.Time{})
		time.AfterFunc(time.Second, func() { ln.Close() })
		_, err = ln.Accept()
		checkOpErr(t, err, "accept", net.ErrClosed)
		checkOpErr(t, ln.Close(), "close", net.ErrClosed)
		checkOpErr(t, ln.SetDeadline(time.Time{}), "set", net.ErrClosed)
	})
}

func TestTCPDeadlines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := tcpNet(t)
		c, s := tcpConnect(t, a, tcpListen(t, b, 80))

		// A read deadline wakes a blocked Read.
		start := time.Now()
		c.SetReadDeadline(start.Add(time.Second))
		_, err := c.Read(make([]byte, 10))
		checkTimeout(t, err, "read")
		if d := time.Since(start); d != time.Second {
			t.Errorf("Read returned after %v, want 1s", d)
		}
		// Data that has arrived is not read once the deadline passed.
		s.Write([]byte("x"))
		synctest.Wait()
		_, err = c.Read(make([]byte, 10))
		checkTimeout(t, err, "read")
		c.SetReadDeadline(time.Time{})
		if n, err := c.Read(make([]byte, 10)); n != 1 || err != nil {
			t.Errorf("Read after clearing the deadline = %d, %v", n, err)
		}

		// A write deadline wakes a Write blocked on a full send buffer
		// (the server does not read); it reports what was queued.
		start = time.Now()
		c.SetWriteDeadline(start.Add(2 * time.Second))
		big := make([]byte, 64<<20)
		n, err := c.Write(big)
		checkTimeout(t, err, "write")
		if n == 0 || n == len(big) {
			t.Errorf("Write queued %d of %d bytes before timing out", n, len(big))
		}
		if d := time.Since(start); d != 2*time.Second {
			t.Errorf("Write returned after %v, want 2s", d)
		}
		// Moving the deadline into the past wakes a blocked Write at
		// once.
		c.SetWriteDeadline(time.Time{})
		time.AfterFunc(time.Second, func() { c.SetWriteDeadline(time.Unix(1, 0)) })
		start = time.Now()
		_, err = c.Write(big)
		checkTimeout(t, err, "write")
		if d := time.Since(start); d != time.Second {
			t.Errorf("Write returned after %v, want 1s", d)
		}
	})
}

func TestTCPClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := tcpNet(t)
		c, s := tcpConnect(t, a, tcpListen(t, b, 80))
		// Close wakes a blocked Read and a blocked Write.
		rerr := make(chan error, 1)
		go func() {
			_, err := c.Read(make([]byte, 10))
			rerr <- err
		}()
		werr := make(chan error, 1)
		go func() {
			_, err := c.Write(make([]byte, 64<<20))
			werr <- err
		}()
		synctest.Wait()
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		checkOpErr(t, <-rerr, "read", net.ErrClosed)
		checkOpErr(t, <-werr, "write", net.ErrClosed)
		checkOpErr(t, c.Close(), "close", net.ErrClosed)
		_, err := c.Read(nil)
		checkOpErr(t, err, "read", net.ErrClosed)
		checkOpErr(t, c.SetDeadline(time.Time{}), "set", net.ErrClosed)
		checkOpErr(t, c.SetNoDelay(true), "set", net.ErrClosed)
		checkOpErr(t, c.CloseWrite(), "close", net.ErrClosed)
		// The peer sees the data then the end of the stream (or the
		// reset, if the close found unread data; here the server had
		// sent nothing, so a graceful FIN).
		if _, err := io.Copy(io.Discard, s); err != nil {
			t.Errorf("server reading to the end: %v", err)
		}
	})
}

func TestTCPReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := tcpNet(t)
		c, s := tcpConnect(t, a, tcpListen(t, b, 80))
		// SetLinger(0): Close resets the connection.
		if err := s.SetLinger(0); err != nil {
			t.Fatal(err)
		}
		s.Close()
		_, err := c.Read(make([]byte, 10))
		checkOpErr(t, err, "read", syscall.ECONNRESET)
		if got, want := err.Error(), "read tcp "+c.LocalAddr().String()+"->10.1.0.2:80: read: connection reset by peer"; got != want {
			t.Errorf("error %q, want %q", got, want)
		}
		if _, err = c.Write([]byte("x")); err == nil {
			t.Error("Write on a reset connection succeeded")
		}
	})
}

func TestTCPLinger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := tcpNet(t)
		ln := tcpListen(t, b, 80)

		// The peer reads everything: Close returns once it is acknowledged.
		c, s := tcpConnect(t, a, ln)
		go io.Copy(io.Discard, s)
		c.SetLinger(5)
		c.Write(make([]byte, 1<<20))
		start := time.Now()
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d >= 5*time.Second {
			t.Errorf("Close with linger took %v although the peer read everything", d)
		}

		// The peer reads nothing: Close waits the linger time out.
		c, _ = tcpConnect(t, a, ln)
		c.SetLinger(3)
		c.SetWriteDeadline(time.Now().Add(time.Second))
		c.Write(make([]byte, 64<<20)) // fills the buffers, then times out
		start = time.Now()
		c.Close()
		if d := time.Since(start); d != 3*time.Second {
			t.Errorf("Close with linger 3 took %v, want 3s", d)
		}
	})
}

func TestTCPCloseRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := tcpNet(t)
		c, s := tcpConnect(t, a, tcpListen(t, b, 80))
		done := make(chan error, 1)
		go func() {
			_, err := c.Read(make([]byte, 10))
			done <- err
		}()
		synctest.Wait()
		if err := c.CloseRead(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != io.EOF {
			t.Errorf("blocked Read after CloseRead: %v, want io.EOF", err)
		}
		// Writing still works.
		c.Write([]byte("still here"))
		b2 := make([]byte, 10)
		if _, err := io.ReadFull(s, b2); err != nil || string(b2) != "still here" {
			t.Errorf("server read %q, %v", b2, err)
		}
	})
}

func TestTCPOptions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := tcpNet(t)
		c, s := tcpConnect(t, a, tcpListen(t, b, 80))
		for name, err := range map[string]error{
			"SetNoDelay":         c.SetNoDelay(false),
			"SetKeepAlive":       c.SetKeepAlive(true),
			"SetKeepAlivePeriod": c.SetKeepAlivePeriod(30 * time.Second),
			"SetReadBuffer":      c.SetReadBuffer(1 << 20),
			"SetWriteBuffer":     c.SetWriteBuffer(1 << 20),
			"SetLinger":          c.SetLinger(-1),
			"SetUserTimeout":     c.SetUserTimeout(time.Minute),
			"reno":               c.SetCongestionControl("reno"),
		} {
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
		checkOpErr(t, c.SetReadBuffer(-1), "set", syscall.EINVAL)
		if err := c.SetCongestionControl("no-such-cc"); err == nil {
			t.Error("SetCongestionControl(no-such-cc) succeeded")
		}
		// The connection still carries data with the new options.
		msg := bytes.Repeat([]byte("0123456789"), 10000)
		go func() { c.Write(msg); c.CloseWrite() }()
		got, err := io.ReadAll(s)
		if err != nil || !bytes.Equal(got, msg) {
			t.Errorf("read %d bytes, %v", len(got), err)
		}
	})
}
