package stack_test

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"ustack/socket"
	"ustack/stack"
)

// Link-local UDP: a link-local address means nothing without its link
// (RFC 4007 §6), so received senders carry the receiving interface as
// their zone, as Go's net reports them, and a reply to that sender from a
// wildcard socket finds its way back.

// readFrom6 reads one datagram from pc within 5 s.
func readFrom6(t *testing.T, pc net.PacketConn) ([]byte, *net.UDPAddr) {
	t.Helper()
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 2048)
	n, from, err := pc.ReadFrom(b)
	if err != nil {
		t.Fatalf("ReadFrom: %v", err)
	}
	return b[:n], from.(*net.UDPAddr)
}

// linkLocalPair is two stacks on one link with only their link-local
// addresses, b running a UDP echo server on [::]:7.
func linkLocalPair(t *testing.T) (a, b *stack.Stack, llb netip.Addr) {
	n := &netw{t: t}
	a, b = pair6(t, n, 1500)
	settle()
	llb = linkLocal(b, "eth0")
	if !hasAddr(b, "eth0", llb) || !hasAddr(a, "eth0", linkLocal(a, "eth0")) {
		t.Fatalf("link-local addresses not assigned")
	}
	echoServer6(t, b)
	return a, b, llb
}

func TestIPv6LinkLocalUDPWildcard(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, _, llb := linkLocalPair(t)
		pc, err := socket.ListenPacket(a, "udp6", ":0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		idx := strconv.Itoa(a.Interface("eth0").Index())
		// The zone may name the interface or give its index; the reply
		// comes from the server's wildcard socket, which answers the zoned
		// sender its ReadFrom returned.
		for i, zone := range []string{"eth0", idx} {
			msg := []byte("hello link-local " + zone)
			if _, err := pc.WriteTo(msg, &net.UDPAddr{IP: llb.AsSlice(), Port: 7, Zone: zone}); err != nil {
				t.Fatalf("WriteTo %v%%%s: %v", llb, zone, err)
			}
			got, from := readFrom6(t, pc)
			if !bytes.Equal(got, msg) {
				t.Errorf("%d: echo %q, want %q", i, got, msg)
			}
			if want := netip.AddrPortFrom(llb.WithZone("eth0"), 7); from.AddrPort() != want {
				t.Errorf("%d: reply from %v, want %v", i, from, want)
			}
		}
		// Without a zone the destination is ambiguous: EINVAL, as on Linux.
		if _, err := pc.WriteTo([]byte("x"), &net.UDPAddr{IP: llb.AsSlice(), Port: 7}); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("WriteTo %v without zone: %v, want EINVAL", llb, err)
		}
		// A zone naming no interface.
		if _, err := pc.WriteTo([]byte("x"), &net.UDPAddr{IP: llb.AsSlice(), Port: 7, Zone: "eth9"}); err == nil {
			t.Errorf("WriteTo %v%%eth9 succeeded", llb)
		}
	})
}

func TestIPv6LinkLocalUDPConnected(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, _, llb := linkLocalPair(t)
		idx := strconv.Itoa(a.Interface("eth0").Index())
		for _, zone := range []string{"eth0", idx} {
			raddr := netip.AddrPortFrom(llb.WithZone(zone), 7)
			c, err := socket.DialUDP(a, netip.AddrPort{}, raddr)
			if err != nil {
				t.Fatalf("DialUDP %v: %v", raddr, err)
			}
			if got := c.RemoteAddr().(*net.UDPAddr).AddrPort(); got != raddr {
				t.Errorf("RemoteAddr %v, want %v", got, raddr)
			}
			if la := c.LocalAddr().(*net.UDPAddr).AddrPort().Addr(); la != linkLocal(a, "eth0") {
				t.Errorf("LocalAddr %v, want a's link-local address", la)
			}
			// The echo arrives from llb%eth0 and must match the socket
			// connected to llb%<zone>.
			for i := range 3 {
				msg := []byte("connected " + zone + " " + strconv.Itoa(i))
				if _, err := c.Write(msg); err != nil {
					t.Fatalf("Write: %v", err)
				}
				got, from := readFrom6(t, c)
				if !bytes.Equal(got, msg) {
					t.Errorf("echo %q, want %q", got, msg)
				}
				if from.AddrPort().Addr().WithZone("") != llb || from.Port != 7 {
					t.Errorf("echo from %v", from)
				}
			}
			c.Close()
		}
	})
}

// TestIPv6LinkLocalTCPZone checks that TCP, which keys connections without
// zones, still connects to a zoned link-local address now that received
// sources carry zones, and that both ends report their link-local
// addresses with the interface as zone, as net does ("fe80::1%eth0"),
// whether the dialer named the interface or gave its index.
func TestIPv6LinkLocalTCPZone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := &netw{t: t}
		a, b := pair6(t, n, 1500)
		settle()
		lla, llb := linkLocal(a, "eth0"), linkLocal(b, "eth0")
		ln, err := socket.Listen(b, "tcp6", "[::]:90")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		type ends struct{ local, remote net.Addr }
		accepted := make(chan ends, 1)
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					close(accepted)
					return
				}
				accepted <- ends{c.LocalAddr(), c.RemoteAddr()}
				b := make([]byte, 64)
				n, _ := c.Read(b)
				c.Write(b[:n])
				c.Close()
			}
		}()
		zoned := func(a netip.Addr, port int) string {
			return netip.AddrPortFrom(a.WithZone("eth0"), uint16(port)).String()
		}
		for _, zone := range []string{"eth0", strconv.Itoa(a.Interface("eth0").Index())} {
			c, err := socket.Dial(a, "tcp6", net.JoinHostPort(llb.WithZone(zone).String(), "90"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 64)
			m, err := c.Read(buf)
			if err != nil || string(buf[:m]) != "ping" {
				t.Fatalf("echo %q, %v", buf[:m], err)
			}
			if got, want := c.RemoteAddr().String(), zoned(llb, 90); got != want {
				t.Errorf("dialed %%%s: RemoteAddr %s, want %s", zone, got, want)
			}
			lport := c.LocalAddr().(*net.TCPAddr).Port
			if got, want := c.LocalAddr().String(), zoned(lla, lport); got != want {
				t.Errorf("dialed %%%s: LocalAddr %s, want %s", zone, got, want)
			}
			e := <-accepted
			if got, want := fmt.Sprint(e.remote), zoned(lla, lport); got != want {
				t.Errorf("accepted RemoteAddr %s, want %s", got, want)
			}
			if got, want := fmt.Sprint(e.local), zoned(llb, 90); got != want {
				t.Errorf("accepted LocalAddr %s, want %s", got, want)
			}
			c.Close()
		}
	})
}

// TestTCPZoneOnlyLinkLocal: connections between global IPv6 addresses,
// and IPv4 ones, carry no zone.
func TestTCPZoneOnlyLinkLocal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := &netw{t: t}
		a, b := pair6(t, n, 1500)
		static6(t, a, b)
		if err := b.AddAddress("eth0", netip.MustParsePrefix("10.0.0.2/24")); err != nil {
			t.Fatal(err)
		}
		if err := a.AddAddress("eth0", netip.MustParsePrefix("10.0.0.1/24")); err != nil {
			t.Fatal(err)
		}
		ln, err := socket.Listen(b, "tcp", ":90")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		for _, dst := range []string{"[2001:db8::2]:90", "10.0.0.2:90"} {
			c, err := socket.Dial(a, "tcp", dst)
			if err != nil {
				t.Fatal(err)
			}
			if c.RemoteAddr().String() != dst || c.LocalAddr().(*net.TCPAddr).Zone != "" {
				t.Errorf("dialed %s: %v -> %v", dst, c.LocalAddr(), c.RemoteAddr())
			}
			c.Close()
		}
	})
}
