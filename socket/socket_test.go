package socket_test

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"ustack/socket"
	"ustack/transport/icmp"
	"ustack/wire"
)

func listen(t *testing.T, s *fakeStack, addr string) *socket.UDPConn {
	t.Helper()
	pc, err := socket.ListenPacket(s, "udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc.(*socket.UDPConn)
}

func dial(t *testing.T, s *fakeStack, raddr string) *socket.UDPConn {
	t.Helper()
	c, err := socket.DialUDP(s, netip.AddrPort{}, netip.MustParseAddrPort(raddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// checkOpErr checks that err is a *net.OpError with op and wraps target.
func checkOpErr(t *testing.T, err error, op string, target error) *net.OpError {
	t.Helper()
	var oe *net.OpError
	if !errors.As(err, &oe) {
		t.Fatalf("error %v (%T) is not a *net.OpError", err, err)
	}
	if oe.Op != op {
		t.Errorf("Op = %q, want %q (error %v)", oe.Op, op, err)
	}
	if !errors.Is(err, target) {
		t.Errorf("error %v does not match %v", err, target)
	}
	return oe
}

func checkTimeout(t *testing.T, err error, op string) {
	t.Helper()
	checkOpErr(t, err, op, os.ErrDeadlineExceeded)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("error %v is not a net.Error with Timeout() true", err)
	}
}

func TestPacketConn(t *testing.T) {
	s := newStack(t)
	a := listen(t, s, "10.0.0.1:0")
	b := listen(t, s, ":5353")
	// ":5353" on "udp" is dual-stack, as with Go's net: [::], and IPv4
	// senders come as IPv4-mapped addresses.
	if got := b.LocalAddr().String(); got != "[::]:5353" {
		t.Errorf("LocalAddr = %s", got)
	}
	if b.RemoteAddr() != nil {
		t.Errorf("RemoteAddr = %v, want nil", b.RemoteAddr())
	}
	to := &net.UDPAddr{IP: net.ParseIP("10.0.0.2"), Port: 5353}
	if n, err := a.WriteTo([]byte("0123456789"), to); n != 10 || err != nil {
		t.Fatalf("WriteTo = %d, %v", n, err)
	}
	a.WriteTo([]byte("second"), to)

	// A short buffer truncates the datagram; the rest is lost (Linux).
	buf := make([]byte, 4)
	n, from, err := b.ReadFrom(buf)
	if err != nil || n != 4 || string(buf) != "0123" {
		t.Fatalf("ReadFrom = %d %q, %v", n, buf[:n], err)
	}
	ua, ok := from.(*net.UDPAddr)
	if !ok || ua.String() != a.LocalAddr().String() {
		t.Errorf("from = %v (%T), want %v", from, from, a.LocalAddr())
	}
	buf = make([]byte, 100)
	n, ap, err := b.ReadFromUDPAddrPort(buf)
	want := netip.MustParseAddrPort(a.LocalAddr().String())
	want = netip.AddrPortFrom(netip.AddrFrom16(want.Addr().As16()), want.Port())
	if err != nil || string(buf[:n]) != "second" || ap != want {
		t.Errorf("ReadFromUDPAddrPort = %q from %v, %v", buf[:n], ap, err)
	}

	// net.UDPConn's address checks.
	_, err = a.WriteTo([]byte("x"), &net.IPAddr{IP: net.ParseIP("10.0.0.2")})
	checkOpErr(t, err, "write", syscall.EINVAL)
	_, err = a.WriteToUDP([]byte("x"), nil)
	checkOpErr(t, err, "write", err) // missing address
	_, err = a.Write([]byte("x"))
	oe := checkOpErr(t, err, "write", syscall.EDESTADDRREQ)
	if se, ok := oe.Err.(*os.SyscallError); !ok || se.Syscall != "write" {
		t.Errorf("Err = %#v, want an *os.SyscallError for write", oe.Err)
	}
	// Broadcast is allowed, as Go sets SO_BROADCAST on UDP sockets.
	if _, err := a.WriteToUDPAddrPort([]byte("x"), netip.MustParseAddrPort("10.0.0.255:9")); err != nil {
		t.Errorf("broadcast: %v", err)
	}
	_, err = a.WriteToUDPAddrPort([]byte("x"), netip.MustParseAddrPort("192.0.2.1:9"))
	oe = checkOpErr(t, err, "write", syscall.ENETUNREACH)
	if oe.Addr.String() != "192.0.2.1:9" || oe.Source.String() != a.LocalAddr().String() {
		t.Errorf("OpError addresses %v -> %v", oe.Source, oe.Addr)
	}
}

func TestListenErrors(t *testing.T) {
	s := newStack(t)
	listen(t, s, "10.0.0.1:53")
	tests := []struct {
		network, addr string
		want          error
	}{
		{"tcp", ":0", net.UnknownNetworkError("tcp")},
		{"udp", "10.0.0.1", nil},
		{"udp", "example.com:53", nil},
		{"udp4", "[::1]:53", nil},
		{"udp", "10.0.0.1:53", syscall.EADDRINUSE},
		{"udp", "0.0.0.0:53", syscall.EADDRINUSE},
	}
	for _, tt := range tests {
		pc, err := socket.ListenPacket(s, tt.network, tt.addr)
		if err == nil {
			pc.Close()
			t.Errorf("ListenPacket(%q, %q) succeeded", tt.network, tt.addr)
			continue
		}
		target := tt.want
		if target == nil {
			target = err
		}
		checkOpErr(t, err, "listen", target)
		if pc != nil {
			t.Errorf("ListenPacket returned a non-nil conn with an error")
		}
	}
	pc, err := socket.ListenPacket(s, "udp4", "localhost:domain")
	if err != nil {
		t.Fatal(err)
	}
	if got := pc.LocalAddr().String(); got != "127.0.0.1:53" {
		t.Errorf("LocalAddr = %s, want 127.0.0.1:53", got)
	}
	pc.Close()
}

func TestDial(t *testing.T) {
	s := newStack(t)
	srv := listen(t, s, "10.0.0.2:7")
	c := dial(t, s, "10.0.0.2:7")
	if c.RemoteAddr().String() != "10.0.0.2:7" || c.LocalAddr().(*net.UDPAddr).IP.String() != "10.0.0.1" {
		t.Errorf("addresses %v -> %v", c.LocalAddr(), c.RemoteAddr())
	}
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, from, err := srv.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("server ReadFrom = %q, %v", buf[:n], err)
	}
	other := listen(t, s, "10.0.0.1:0")
	other.WriteTo([]byte("spoof"), c.LocalAddr()) // filtered: not the peer
	srv.WriteTo([]byte("pong"), from)
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "pong" {
		t.Errorf("Read = %q, %v; want pong", buf[:n], err)
	}
	_, err = c.WriteTo([]byte("x"), srv.LocalAddr())
	checkOpErr(t, err, "write", net.ErrWriteToConnected)

	_, err = socket.DialUDP(s, netip.AddrPort{}, netip.MustParseAddrPort("192.0.2.1:53"))
	oe := checkOpErr(t, err, "dial", syscall.ENETUNREACH)
	if oe.Source != nil || oe.Addr.String() != "192.0.2.1:53" {
		t.Errorf("dial error addresses: %v -> %v", oe.Source, oe.Addr)
	}
	_, err = socket.DialUDP(s, netip.AddrPort{}, netip.AddrPort{})
	checkOpErr(t, err, "dial", err)
}

func TestConnectionRefused(t *testing.T) {
	s := newStack(t)
	c := dial(t, s, "10.0.0.2:9") // nobody there
	if _, err := c.Write([]byte("hello?")); err != nil {
		t.Fatal(err)
	}
	_, err := c.Read(make([]byte, 10))
	oe := checkOpErr(t, err, "read", syscall.ECONNREFUSED)
	want := "read udp " + c.LocalAddr().String() + "->10.0.0.2:9: read: connection refused"
	if oe.Error() != want {
		t.Errorf("error %q, want %q", oe.Error(), want)
	}
	// Once reported, the error is gone: the next Write goes out and draws
	// a new one, reported by Write as Linux does.
	c.Write([]byte("again"))
	_, err = c.Write([]byte("again"))
	checkOpErr(t, err, "write", syscall.ECONNREFUSED)
}

func TestDeadlines(t *testing.T) {
	t.Run("past", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := newStack(t)
			c := listen(t, s, "10.0.0.1:1000")
			c.WriteTo([]byte("queued"), c.LocalAddr())
			c.SetDeadline(time.Now().Add(-time.Second))
			// As in net, a passed deadline fails reads even with data queued.
			_, _, err := c.ReadFrom(make([]byte, 10))
			checkTimeout(t, err, "read")
			_, err = c.WriteTo([]byte("x"), c.LocalAddr())
			checkTimeout(t, err, "write")
			// Clearing it makes the socket usable again.
			c.SetDeadline(time.Time{})
			if n, _, err := c.ReadFrom(make([]byte, 10)); n != 6 || err != nil {
				t.Errorf("ReadFrom after clearing = %d, %v", n, err)
			}
		})
	})
	t.Run("future", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := newStack(t)
			c := listen(t, s, "10.0.0.1:1000")
			start := time.Now()
			c.SetReadDeadline(start.Add(3 * time.Second))
			_, err := c.Read(make([]byte, 10))
			checkTimeout(t, err, "read")
			if d := time.Since(start); d != 3*time.Second {
				t.Errorf("timed out after %v, want 3s", d)
			}
		})
	})
	t.Run("data before deadline", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := newStack(t)
			c := listen(t, s, "10.0.0.1:1000")
			c.SetReadDeadline(time.Now().Add(time.Minute))
			go func() {
				time.Sleep(time.Second) // virtual time inside the bubble
				c.WriteTo([]byte("late"), c.LocalAddr())
			}()
			start := time.Now()
			buf := make([]byte, 10)
			n, err := c.Read(buf)
			if err != nil || string(buf[:n]) != "late" || time.Since(start) != time.Second {
				t.Errorf("Read = %q, %v after %v", buf[:n], err, time.Since(start))
			}
		})
	})
	t.Run("moved while blocked", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := newStack(t)
			c := listen(t, s, "10.0.0.1:1000")
			start := time.Now()
			c.SetReadDeadline(start.Add(time.Hour))
			done := make(chan error)
			go func() {
				_, err := c.Read(make([]byte, 10))
				done <- err
			}()
			synctest.Wait()                               // blocked in Read
			c.SetReadDeadline(start.Add(2 * time.Second)) // earlier
			time.Sleep(time.Second)
			c.SetReadDeadline(start.Add(5 * time.Second)) // later again
			synctest.Wait()
			select {
			case err := <-done:
				t.Fatalf("Read returned early: %v", err)
			default:
			}
			checkTimeout(t, <-done, "read")
			if d := time.Since(start); d != 5*time.Second {
				t.Errorf("timed out after %v, want 5s", d)
			}

			// Into the past: the blocked reader wakes at once.
			c.SetReadDeadline(time.Time{})
			go func() {
				_, err := c.Read(make([]byte, 10))
				done <- err
			}()
			synctest.Wait()
			now := time.Now()
			c.SetDeadline(now.Add(-time.Nanosecond))
			checkTimeout(t, <-done, "read")
			if time.Since(now) != 0 {
				t.Errorf("woke after %v", time.Since(now))
			}
			// Cleared while blocked: no timeout at all.
			c.SetReadDeadline(time.Now().Add(time.Second))
			go func() {
				_, err := c.Read(make([]byte, 10))
				done <- err
			}()
			synctest.Wait()
			c.SetReadDeadline(time.Time{})
			time.Sleep(time.Hour)
			synctest.Wait()
			select {
			case err := <-done:
				t.Fatalf("Read returned with no deadline: %v", err)
			default:
			}
			c.Close()
			checkOpErr(t, <-done, "read", net.ErrClosed)
		})
	})
}

func TestClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStack(t)
		c := listen(t, s, "10.0.0.1:1000")
		ping, err := socket.ListenPing(s, netip.Addr{})
		if err != nil {
			t.Fatal(err)
		}
		errs := make(chan error, 3)
		for range 2 {
			go func() {
				_, _, err := c.ReadFrom(make([]byte, 10))
				errs <- err
			}()
		}
		go func() {
			_, _, err := ping.ReadFrom(make([]byte, 10))
			errs <- err
		}()
		synctest.Wait()
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		ping.Close()
		for range 3 {
			checkOpErr(t, <-errs, "read", net.ErrClosed)
		}
		checkOpErr(t, c.Close(), "close", net.ErrClosed)
		_, err = c.WriteTo([]byte("x"), c.LocalAddr())
		checkOpErr(t, err, "write", net.ErrClosed)
		checkOpErr(t, c.SetDeadline(time.Now()), "set", net.ErrClosed)
		// The port is free again.
		listen(t, s, "10.0.0.1:1000")
	})
}

func TestConcurrentReaders(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStack(t)
		c := listen(t, s, "10.0.0.1:1000")
		got := make(chan string, 2)
		for range 2 {
			go func() {
				buf := make([]byte, 10)
				n, _, err := c.ReadFrom(buf)
				if err != nil {
					t.Error(err)
				}
				got <- string(buf[:n])
			}()
		}
		synctest.Wait()
		// Two datagrams, one wake-up value: both readers must still return.
		c.WriteTo([]byte("a"), c.LocalAddr())
		c.WriteTo([]byte("b"), c.LocalAddr())
		r1, r2 := <-got, <-got
		if r1+r2 != "ab" && r1+r2 != "ba" {
			t.Errorf("readers got %q and %q", r1, r2)
		}
	})
}

func TestPing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newStack(t)
		c, err := socket.ListenPing(s, netip.Addr{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		msg := make([]byte, 12)
		f := wire.ICMPv4Fields{Type: wire.ICMPv4Echo, Rest: wire.EchoRest(0, 1)}
		f.Encode(msg)
		copy(msg[8:], "data")
		if n, err := c.WriteTo(msg, &net.IPAddr{IP: net.ParseIP("10.0.0.2")}); n != 12 || err != nil {
			t.Fatalf("WriteTo = %d, %v", n, err)
		}
		buf := make([]byte, 100)
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		m := wire.ICMPv4(buf[:n])
		if ia, ok := from.(*net.IPAddr); !ok || ia.IP.String() != "10.0.0.2" {
			t.Errorf("from %v (%T)", from, from)
		}
		if m.Type() != wire.ICMPv4EchoReply || m.ID() != c.ID() || m.Seq() != 1 || string(m.Payload()) != "data" {
			t.Errorf("reply %x", buf[:n])
		}
		// A *net.UDPAddr works too, as with x/net/icmp "udp4" sockets.
		if _, err := c.WriteTo(msg, &net.UDPAddr{IP: net.ParseIP("10.0.0.2")}); err != nil {
			t.Error(err)
		}
		c.ReadFrom(buf)

		_, err = c.WriteTo(msg, &net.IPAddr{IP: net.ParseIP("10.0.0.255")})
		checkOpErr(t, err, "write", syscall.EACCES)
		_, err = c.WriteTo(buf[:7], &net.IPAddr{IP: net.ParseIP("10.0.0.2")})
		checkOpErr(t, err, "write", syscall.EINVAL)

		// An ICMP error about a request fails the next read with details.
		s.ICMP().HandleError(icmpErr(c.ID()))
		_, _, err = c.ReadFrom(buf)
		checkOpErr(t, err, "read", syscall.EHOSTUNREACH)
		var ie *icmp.Error
		if !errors.As(err, &ie) || ie.Seq != 9 {
			t.Errorf("error %v does not carry the *icmp.Error", err)
		}

		c.SetReadDeadline(time.Now().Add(time.Second))
		_, _, err = c.ReadFrom(buf)
		checkTimeout(t, err, "read")
	})
}
