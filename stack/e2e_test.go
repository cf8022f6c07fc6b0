package stack_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"ustack/link"
	"ustack/link/pipe"
	"ustack/network/neigh"
	"ustack/network/route"
	"ustack/socket"
	"ustack/stack"
	"ustack/transport/icmp"
	"ustack/wire"
)

// netw builds in-memory networks of stacks joined by pipe links.
type netw struct {
	t      *testing.T
	stacks []*stack.Stack
}

func (n *netw) stack(name string) *stack.Stack {
	s := stack.New(stack.Options{Name: name})
	n.stacks = append(n.stacks, s)
	n.t.Cleanup(func() { s.Close() })
	return s
}

// connect joins a and b with a pipe of the given MTU and gives each end an
// address. It returns the two links.
func (n *netw) connect(a *stack.Stack, aName, aAddr string, b *stack.Stack, bName, bAddr string, mtu int) (link.Endpoint, link.Endpoint) {
	n.t.Helper()
	ea, eb := pipe.New(pipe.Config{MTU: mtu})
	return n.attach(a, aName, aAddr, ea), n.attach(b, bName, bAddr, eb)
}

func (n *netw) attach(s *stack.Stack, name, addr string, ep link.Endpoint) link.Endpoint {
	n.t.Helper()
	if _, err := s.AddInterface(name, ep); err != nil {
		n.t.Fatal(err)
	}
	if err := s.AddAddress(name, netip.MustParsePrefix(addr)); err != nil {
		n.t.Fatal(err)
	}
	return ep
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// ping sends one echo request and waits for the reply; it returns the
// reply's TTL-free payload check and error.
func ping(t *testing.T, s *stack.Stack, dst string, seq uint16, ttl int) error {
	t.Helper()
	c, err := socket.ListenPing(s, netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ttl > 0 {
		c.SetTTL(ttl)
	}
	msg := make([]byte, 8+32)
	(&wire.ICMPv4Fields{Type: wire.ICMPv4Echo, Rest: wire.EchoRest(0, seq)}).Encode(msg)
	copy(msg[8:], "0123456789abcdef0123456789abcdef")
	if _, err := c.WriteTo(msg, &net.IPAddr{IP: net.ParseIP(dst)}); err != nil {
		return err
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 1500)
	n, from, err := c.ReadFrom(b)
	if err != nil {
		return err
	}
	m := wire.ICMPv4(b[:n])
	if m.Type() != wire.ICMPv4EchoReply || m.Seq() != seq || !bytes.Equal(m.Payload(), msg[8:]) {
		t.Errorf("reply from %v: type %v seq %d", from, m.Type(), m.Seq())
	}
	if from.String() != dst {
		t.Errorf("reply from %v, want %s", from, dst)
	}
	return nil
}

// echoServer answers UDP datagrams on port 7 until the socket closes.
func echoServer(t *testing.T, s *stack.Stack) {
	t.Helper()
	pc, err := socket.ListenPacket(s, "udp", ":7")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		b := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(b)
			if err != nil {
				return
			}
			pc.WriteTo(b[:n], from)
		}
	}()
}

func udpRoundTrip(t *testing.T, s *stack.Stack, dst string, payload []byte) {
	t.Helper()
	c, err := socket.DialUDP(s, netip.AddrPort{}, netip.AddrPortFrom(mustAddr(dst), 7))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(payload); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 65536)
	n, err := c.Read(b)
	if err != nil {
		t.Fatalf("UDP echo from %s: %v", dst, err)
	}
	if !bytes.Equal(b[:n], payload) {
		t.Fatalf("UDP echo from %s: got %d bytes, want %d equal bytes", dst, n, len(payload))
	}
}

func TestTwoStacks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := &netw{t: t}
		a, b := n.stack("a"), n.stack("b")
		_, eb := n.connect(a, "eth0", "10.0.0.1/24", b, "eth0", "10.0.0.2/24", 1500)

		if err := ping(t, a, "10.0.0.2", 1, 0); err != nil {
			t.Fatalf("ping: %v", err)
		}
		// ARP resolved both ways: a asked, b learned a from the request.
		var found bool
		for _, e := range a.Interface("eth0").Neighbors() {
			if e.Addr == mustAddr("10.0.0.2") {
				found = true
				if e.MAC != eb.HardwareAddr() || e.State != neigh.Reachable {
					t.Errorf("a's entry for b = %+v, want %v REACHABLE", e, eb.HardwareAddr())
				}
			}
		}
		if !found {
			t.Errorf("a has no neighbour entry for b: %+v", a.Interface("eth0").Neighbors())
		}
		if len(b.Interface("eth0").Neighbors()) == 0 {
			t.Errorf("b did not learn a from its ARP request")
		}

		echoServer(t, b)
		udpRoundTrip(t, a, "10.0.0.2", []byte("hello, ustack"))

		// A closed port answers with port unreachable: a connected socket
		// sees ECONNREFUSED.
		c, err := socket.DialUDP(a, netip.AddrPort{}, netip.AddrPortFrom(mustAddr("10.0.0.2"), 9999))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("anyone?"))
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Read(make([]byte, 10)); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("read after port unreachable: %v, want ECONNREFUSED", err)
		}
		// Loopback works inside one stack.
		if err := ping(t, a, "127.0.0.1", 2, 0); err != nil {
			t.Errorf("ping 127.0.0.1: %v", err)
		}
		if err := ping(t, a, "10.0.0.1", 3, 0); err != nil {
			t.Errorf("ping own address: %v", err)
		}
	})
}

// line builds a — r — b with r forwarding.
func line(t *testing.T, n *netw, mtu int) (a, r, b *stack.Stack) {
	a, r, b = n.stack("a"), n.stack("r"), n.stack("b")
	n.connect(a, "eth0", "10.0.1.2/24", r, "eth0", "10.0.1.1/24", mtu)
	n.connect(r, "eth1", "10.0.2.1/24", b, "eth0", "10.0.2.2/24", mtu)
	for _, x := range []struct {
		s  *stack.Stack
		gw string
	}{{a, "10.0.1.1"}, {b, "10.0.2.1"}} {
		if err := x.s.AddRoute(route.Route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: mustAddr(x.gw)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.SetSysctl("net.inet.ip.forwarding", "1"); err != nil {
		t.Fatal(err)
	}
	return a, r, b
}

func TestForwardingLine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := &netw{t: t}
		a, r, b := line(t, n, 1500)
		if err := ping(t, a, "10.0.2.2", 1, 0); err != nil {
			t.Fatalf("ping through router: %v", err)
		}
		if got := r.Stats()["ipv4.forwarded"]; got < 2 {
			t.Errorf("router forwarded %d packets, want at least 2", got)
		}
		echoServer(t, b)
		udpRoundTrip(t, a, "10.0.2.2", []byte("through the router"))

		// TTL 1 dies at the router: time exceeded comes back from it.
		err := ping(t, a, "10.0.2.2", 2, 1)
		var ie *icmp.Error
		if !errors.As(err, &ie) || ie.Type != uint8(wire.ICMPv4TimeExceeded) || ie.From != mustAddr("10.0.1.1") {
			t.Fatalf("ping with TTL 1: %v, want time exceeded from 10.0.1.1", err)
		}
		if got := r.Stats()["icmp.out.time-exceeded"]; got != 1 {
			t.Errorf("router sent %d time exceeded, want 1", got)
		}
		// With forwarding off the router drops and counts.
		r.SetSysctl("net.inet.ip.forwarding", "0")
		before := r.Stats()["ipv4.drop.forwarding_off"]
		c, _ := socket.DialUDP(a, netip.AddrPort{}, netip.AddrPortFrom(mustAddr("10.0.2.2"), 7))
		defer c.Close()
		c.Write([]byte("x"))
		synctest.Wait()
		if r.Stats()["ipv4.drop.forwarding_off"] != before+1 {
			t.Errorf("router with forwarding off did not count the drop")
		}
	})
}

func TestFragmentedUDP(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := &netw{t: t}
		a, r, b := line(t, n, 1500)
		echoServer(t, b)
		payload := make([]byte, 20000)
		for i := range payload {
			payload[i] = byte(i * 31)
		}
		udpRoundTrip(t, a, "10.0.2.2", payload)
		sa, sb := a.Stats(), b.Stats()
		if sa["ipv4.frag.out"] != 14 || sb["ipv4.frag.out"] != 14 {
			t.Errorf("fragments sent: a %d, b %d; want 14 each", sa["ipv4.frag.out"], sb["ipv4.frag.out"])
		}
		if sa["ipv4.reasm.ok"] != 1 || sb["ipv4.reasm.ok"] != 1 {
			t.Errorf("reassembled: a %d, b %d; want 1 each", sa["ipv4.reasm.ok"], sb["ipv4.reasm.ok"])
		}
		if r.Stats()["ipv4.forwarded"] != 28 {
			t.Errorf("router forwarded %d, want 28 fragments", r.Stats()["ipv4.forwarded"])
		}
		// A 64 KB datagram (the largest) crosses too.
		big := make([]byte, 65507)
		binary.BigEndian.PutUint32(big[65000:], 0xdeadbeef)
		udpRoundTrip(t, a, "10.0.2.2", big)
		// The router, at a smaller MTU on the far side, fragments again.
		r.Interface("eth1").SetMTU(576)
		udpRoundTrip(t, a, "10.0.2.2", payload)
	})
}

func TestNoRouteAndUnreachableNeighbour(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := &netw{t: t}
		a, b := n.stack("a"), n.stack("b")
		n.connect(a, "eth0", "10.0.0.1/24", b, "eth0", "10.0.0.2/24", 1500)
		c, err := socket.DialUDP(a, netip.AddrPort{}, netip.AddrPortFrom(mustAddr("192.0.2.1"), 7))
		if err == nil {
			c.Close()
			t.Fatalf("dial without a route succeeded")
		}
		// 10.0.0.99 never answers ARP: queued packets fail with host
		// unreachable after the retries.
		c, err = socket.DialUDP(a, netip.AddrPort{}, netip.AddrPortFrom(mustAddr("10.0.0.99"), 7))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// Larger than the 60 bytes of an IPv4 header with options: the
		// error must still quote it.
		c.Write(make([]byte, 1000))
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.Read(make([]byte, 10)); !errors.Is(err, syscall.EHOSTUNREACH) {
			t.Errorf("read: %v, want EHOSTUNREACH; sockets %+v; stats %v", err, a.Sockets(), a.Stats())
		}
		if got := a.Stats()["ipv4.drop.neigh_failed"]; got != 1 {
			t.Errorf("neigh_failed drops = %d, want 1", got)
		}
	})
}

func TestManyStacksIndependent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := &netw{t: t}
		// Ten pairs with the same addresses: stacks share nothing.
		for i := 0; i < 10; i++ {
			a, b := n.stack("a"), n.stack("b")
			n.connect(a, "eth0", "10.0.0.1/24", b, "eth0", "10.0.0.2/24", 1500)
			if err := ping(t, a, "10.0.0.2", uint16(i), 0); err != nil {
				t.Fatalf("pair %d: %v", i, err)
			}
		}
	})
}

func TestInterfacesAtRunTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := &netw{t: t}
		a, b := n.stack("a"), n.stack("b")
		n.connect(a, "eth0", "10.0.0.1/24", b, "eth0", "10.0.0.2/24", 1500)
		if err := ping(t, a, "10.0.0.2", 1, 0); err != nil {
			t.Fatal(err)
		}
		if err := a.RemoveInterface("eth0"); err != nil {
			t.Fatal(err)
		}
		if a.Interface("eth0") != nil || len(a.Routes().Routes()) != 2 { // only lo's: 127.0.0.0/8 and ::1
			t.Errorf("interface or its routes remain: %v", a.Routes().Routes())
		}
		if err := ping(t, a, "10.0.0.2", 2, 0); err == nil {
			t.Errorf("ping succeeded without an interface")
		}
		// A new link under the same name works again.
		ea, eb := pipe.New(pipe.Config{})
		n.attach(a, "eth0", "10.0.0.1/24", ea)
		b.RemoveInterface("eth0")
		n.attach(b, "eth0", "10.0.0.2/24", eb)
		if err := ping(t, a, "10.0.0.2", 3, 0); err != nil {
			t.Fatalf("ping after re-adding: %v", err)
		}
		// Addresses come and go with their connected routes.
		if err := a.AddAddress("eth0", netip.MustParsePrefix("10.0.9.1/24")); err != nil {
			t.Fatal(err)
		}
		if _, ok := a.Routes().Lookup(mustAddr("10.0.9.5")); !ok {
			t.Errorf("no connected route for a new address")
		}
		if err := a.AddAddress("eth0", netip.MustParsePrefix("10.0.9.1/24")); err == nil {
			t.Errorf("duplicate address accepted")
		}
		if err := a.RemoveAddress("eth0", mustAddr("10.0.9.1")); err != nil {
			t.Fatal(err)
		}
		if _, ok := a.Routes().Lookup(mustAddr("10.0.9.5")); ok {
			t.Errorf("connected route outlived its address")
		}
		if _, err := a.AddInterface("eth0", nil); err == nil {
			t.Errorf("duplicate interface name accepted")
		}
		// Unknown tunables and bad values are errors naming the problem.
		if err := a.SetSysctl("net.inet.ip.nosuch", "1"); err == nil || !strings.Contains(err.Error(), "net.inet.ip.nosuch") {
			t.Errorf("unknown sysctl: %v", err)
		}
		if err := a.SetSysctl("net.inet.ip.ttl", "300"); err == nil {
			t.Errorf("TTL 300 accepted")
		}
		if v, _ := a.GetSysctl("net.inet.ip.ttl"); v != "64" {
			t.Errorf("net.inet.ip.ttl = %q", v)
		}
		if len(a.Sockets()) != 0 {
			t.Errorf("sockets left open: %+v", a.Sockets())
		}
	})
}

func TestUDPBroadcast(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := &netw{t: t}
		a, b := n.stack("a"), n.stack("b")
		n.connect(a, "eth0", "10.0.0.1/24", b, "eth0", "10.0.0.2/24", 1500)
		pc, err := socket.ListenPacket(b, "udp", ":5353")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		c, err := socket.ListenPacket(a, "udp", ":0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		rb := make([]byte, 100)
		for _, dst := range []string{"10.0.0.255", "255.255.255.255"} {
			if _, err := c.WriteTo([]byte("to all "+dst), &net.UDPAddr{IP: net.ParseIP(dst), Port: 5353}); err != nil {
				t.Fatalf("broadcast to %s: %v", dst, err)
			}
			pc.SetReadDeadline(time.Now().Add(time.Second))
			k, from, err := pc.ReadFrom(rb)
			if err != nil || string(rb[:k]) != "to all "+dst || from.(*net.UDPAddr).IP.String() != "10.0.0.1" {
				t.Errorf("broadcast to %s: got %q from %v, %v", dst, rb[:k], from, err)
			}
		}
		// Nobody listening on a broadcast port: no port unreachable
		// (RFC 1122 §3.2.2).
		c.WriteTo([]byte("anyone"), &net.UDPAddr{IP: net.ParseIP("10.0.0.255"), Port: 9})
		synctest.Wait()
		if got := b.Stats()["icmp.out.dst-unreachable"]; got != 0 {
			t.Errorf("b answered a broadcast with %d port unreachables", got)
		}
	})
}

func TestUDPMulticast(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := &netw{t: t}
		a, b := n.stack("a"), n.stack("b")
		n.connect(a, "eth0", "10.0.0.1/24", b, "eth0", "10.0.0.2/24", 1500)
		group := mustAddr("239.1.2.3")
		rx, err := socket.ListenUDP(b, netip.AddrPortFrom(netip.Addr{}, 5000))
		if err != nil {
			t.Fatal(err)
		}
		tx, err := socket.ListenPacket(a, "udp", ":0")
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Close()
		send := func(msg string) {
			if _, err := tx.WriteTo([]byte(msg), &net.UDPAddr{IP: net.ParseIP("239.1.2.3"), Port: 5000}); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
		}
		rb := make([]byte, 100)
		read := func() (string, error) {
			rx.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
			k, _, err := rx.ReadFrom(rb)
			return string(rb[:k]), err
		}
		send("before joining")
		if msg, err := read(); err == nil {
			t.Errorf("received %q for a group not joined", msg)
		}
		if got := b.Stats()["ipv4.drop.not_for_us"]; got != 1 {
			t.Errorf("not_for_us drops = %d, want 1", got)
		}
		if err := rx.JoinGroup(0, group); err != nil {
			t.Fatal(err)
		}
		if err := rx.JoinGroup(0, mustAddr("10.0.0.9")); err == nil {
			t.Errorf("joined a unicast address")
		}
		send("after joining")
		if msg, err := read(); err != nil || msg != "after joining" {
			t.Errorf("read = %q, %v; want the datagram sent to the group", msg, err)
		}
		// Closing the socket leaves the group.
		rx.Close()
		send("after closing")
		if got := b.Stats()["ipv4.drop.not_for_us"]; got != 2 {
			t.Errorf("not_for_us drops = %d after the socket left, want 2", got)
		}
	})
}
