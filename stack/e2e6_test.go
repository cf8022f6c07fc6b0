package stack_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"ustack/link/pipe"
	"ustack/network/ndp"
	"ustack/network/neigh"
	"ustack/network/route"
	"ustack/socket"
	"ustack/stack"
	"ustack/transport/udp"
	"ustack/wire"
)

// settle lets duplicate address detection finish: up to
// MaxRtrSolicitationDelay before the first solicitation and RetransTimer
// after it, in the bubble's virtual time.
func settle() {
	<-time.After(3 * time.Second)
	synctest.Wait()
}

// linkLocal is the link-local address ND makes on s's interface.
func linkLocal(s *stack.Stack, ifname string) netip.Addr {
	return wire.LinkLocalFromMAC(s.Interface(ifname).HardwareAddr())
}

// hasAddr reports whether s's interface has the address assigned.
func hasAddr(s *stack.Stack, ifname string, a netip.Addr) bool {
	for _, p := range s.Interface(ifname).Addrs() {
		if p.Addr() == a {
			return true
		}
	}
	return false
}

// ping6 sends one ICMPv6 echo request to dst (a zone names the interface
// of a link-local address) and waits for the reply.
func ping6(t *testing.T, s *stack.Stack, dst netip.Addr, seq uint16) error {
	t.Helper()
	c, err := socket.ListenPing(s, netip.IPv6Unspecified())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := make([]byte, 8+32)
	(&wire.ICMPv6Fields{Type: wire.ICMPv6EchoRequest, Rest: wire.EchoRest(0, seq)}).Encode(msg)
	copy(msg[8:], "0123456789abcdef0123456789abcdef")
	if _, err := c.WriteTo(msg, &net.IPAddr{IP: dst.AsSlice(), Zone: dst.Zone()}); err != nil {
		return err
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 1500)
	n, from, err := c.ReadFrom(b)
	if err != nil {
		return err
	}
	m := wire.ICMPv6(b[:n])
	if m.Type() != wire.ICMPv6EchoReply || m.Seq() != seq || !bytes.Equal(m.Payload(), msg[8:]) {
		t.Errorf("reply from %v: type %v seq %d", from, m.Type(), m.Seq())
	}
	if got := from.(*net.IPAddr).IP; !got.Equal(dst.AsSlice()) {
		t.Errorf("reply from %v, want %v", got, dst)
	}
	return nil
}

// pair6 joins two stacks with a pipe and no configured addresses.
func pair6(t *testing.T, n *netw, mtu int) (a, b *stack.Stack) {
	a, b = n.stack("a"), n.stack("b")
	ea, eb := pipe.New(pipe.Config{MTU: mtu})
	if _, err := a.AddInterface("eth0", ea); err != nil {
		t.Fatal(err)
	}
	if _, err := b.AddInterface("eth0", eb); err != nil {
		t.Fatal(err)
	}
	return a, b
}

func TestIPv6LinkLocalPing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := &netw{t: t}
		a, b := pair6(t, n, 1500)
		settle()
		lla, llb := linkLocal(a, "eth0"), linkLocal(b, "eth0")
		if !hasAddr(a, "eth0", lla) || !hasAddr(b, "eth0", llb) {
			t.Fatalf("link-local addresses not assigned: a %v, b %v", a.Interface("eth0").Addrs(), b.Interface("eth0").Addrs())
		}
		if err := ping6(t, a, llb.WithZone("eth0"), 1); err != nil {
			t.Fatalf("ping %v: %v", llb, err)
		}
		// a found b by neighbour discovery; b learned a from the
		// solicitation.
		var found bool
		for _, e := range a.Interface("eth0").Neighbors() {
			if e.Addr == llb {
				found = true
				if e.MAC != b.Interface("eth0").HardwareAddr() || e.State != neigh.Reachable {
					t.Errorf("a's entry for b = %+v", e)
				}
			}
		}
		if !found {
			t.Errorf("a has no neighbour entry for b: %+v", a.Interface("eth0").Neighbors())
		}
		if a.Stats()["ndp.out.neighbor-solicitation"] == 0 || b.Stats()["ndp.out.neighbor-advertisement"] == 0 {
			t.Errorf("no NS/NA counted: a %v", a.Stats())
		}
		// And back, and to loopback and to itself.
		if err := ping6(t, b, lla.WithZone("eth0"), 2); err != nil {
			t.Errorf("ping back: %v", err)
		}
		if err := ping6(t, a, netip.IPv6Loopback(), 3); err != nil {
			t.Errorf("ping ::1: %v", err)
		}
		if err := ping6(t, a, lla.WithZone("eth0"), 4); err != nil {
			t.Errorf("ping own link-local: %v", err)
		}
	})
}

// echoServer6 answers UDP datagrams on [::]:7 until the socket closes.
func echoServer6(t *testing.T, s *stack.Stack) {
	t.Helper()
	pc, err := socket.ListenPacket(s, "udp6", ":7")
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

// static6 gives a and b 2001:db8::1/64 and 2001:db8::2/64 and waits for
// DAD.
func static6(t *testing.T, a, b *stack.Stack) {
	t.Helper()
	for i, s := range []*stack.Stack{a, b} {
		if err := s.AddAddress("eth0", netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i + 1)}), 64)); err != nil {
			t.Fatal(err)
		}
	}
	settle()
	if !hasAddr(a, "eth0", mustAddr("2001:db8::1")) || !hasAddr(b, "eth0", mustAddr("2001:db8::2")) {
		t.Fatalf("static addresses not assigned after DAD: a %v, b %v", a.Interface("eth0").Addrs(), b.Interface("eth0").Addrs())
	}
}

func TestIPv6UDP(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := &netw{t: t}
		a, b := pair6(t, n, 1500)
		static6(t, a, b)
		echoServer6(t, b)
		udpRoundTrip(t, a, "2001:db8::2", []byte("hello over IPv6"))
		if err := ping6(t, a, mustAddr("2001:db8::2"), 1); err != nil {
			t.Errorf("ping global: %v", err)
		}
		// 20 KB: 14 fragments each way (1448 bytes of payload each), and
		// reassembled.
		payload := make([]byte, 20000)
		for i := range payload {
			payload[i] = byte(i * 31)
		}
		udpRoundTrip(t, a, "2001:db8::2", payload)
		sa, sb := a.Stats(), b.Stats()
		if sa["ipv6.frag.out"] < 14 || sb["ipv6.frag.out"] < 14 {
			t.Errorf("fragments sent: a %d, b %d; want 14 each", sa["ipv6.frag.out"], sb["ipv6.frag.out"])
		}
		if sa["ipv6.reasm.ok"] != 1 || sb["ipv6.reasm.ok"] != 1 {
			t.Errorf("reassembled: a %d, b %d; want 1 each", sa["ipv6.reasm.ok"], sb["ipv6.reasm.ok"])
		}
		// A datagram with a zero checksum is dropped over IPv6 (RFC 8200
		// §8.1): the UDP layer counts it.
		if got := sb["udp.drop.bad_checksum"]; got != 0 {
			t.Errorf("bad checksums before: %d", got)
		}
	})
}

// tcpSHA sends size bytes from a to b's port over TCP and checks that b
// hashes the same bytes.
func tcpSHA(t *testing.T, a, b *stack.Stack, dst, port string, size int) {
	t.Helper()
	ln, err := socket.Listen(b, "tcp6", "[::]:"+port)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan [32]byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(got)
			return
		}
		defer c.Close()
		h := sha256.New()
		io.Copy(h, c)
		got <- [32]byte(h.Sum(nil))
	}()
	c, err := socket.Dial(a, "tcp6", net.JoinHostPort(dst, port))
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i*7 + i>>10)
	}
	go func() {
		c.Write(data)
		c.(interface{ CloseWrite() error }).CloseWrite()
	}()
	defer c.Close()
	select {
	case sum, ok := <-got:
		if !ok || sum != sha256.Sum256(data) {
			t.Fatalf("sha256 differs after %d bytes over IPv6", size)
		}
	case <-time.After(time.Minute):
		t.Fatalf("transfer did not finish")
	}
}

func TestIPv6TCP(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := &netw{t: t}
		a, b := pair6(t, n, 1500)
		static6(t, a, b)
		tcpSHA(t, a, b, "2001:db8::2", "80", 1<<20)
		// Link-local works too, with the zone naming the interface.
		tcpSHA(t, a, b, linkLocal(b, "eth0").WithZone("eth0").String(), "81", 64<<10)
		// And ::1 inside one stack.
		tcpSHA(t, a, a, "::1", "82", 64<<10)
	})
}

// line6 builds a — r — b over IPv6 with r forwarding and the r — b link's
// MTU at 1280 on r's side only, so r must send packet too big.
func line6(t *testing.T, n *netw) (a, r, b *stack.Stack) {
	a, r, b = n.stack("a"), n.stack("r"), n.stack("b")
	n.connect(a, "eth0", "2001:db8:1::2/64", r, "eth0", "2001:db8:1::1/64", 1500)
	n.connect(r, "eth1", "2001:db8:2::1/64", b, "eth0", "2001:db8:2::2/64", 1500)
	if err := r.SetSysctl("net.inet6.ip6.forwarding", "1"); err != nil {
		t.Fatal(err)
	}
	// Routes via gateways on subnets whose addresses are still under DAD
	// (as the daemon adds them at start).
	for _, x := range []struct {
		s  *stack.Stack
		gw string
	}{{a, "2001:db8:1::1"}, {b, "2001:db8:2::1"}} {
		if err := x.s.AddRoute(route.Route{Dst: netip.MustParsePrefix("::/0"), Gateway: mustAddr(x.gw)}); err != nil {
			t.Fatal(err)
		}
	}
	settle()
	if err := r.Interface("eth1").SetMTU(1280); err != nil {
		t.Fatal(err)
	}
	return a, r, b
}

func TestIPv6PacketTooBigLowersMSS(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := &netw{t: t}
		a, r, b := line6(t, n)
		if err := ping6(t, a, mustAddr("2001:db8:2::2"), 1); err != nil {
			t.Fatalf("ping through the router: %v", err)
		}
		tcpSHA(t, a, b, "2001:db8:2::2", "80", 256<<10)
		if got := a.Stats()["tcp.pmtu_updates"]; got == 0 {
			t.Errorf("no path MTU update at the sender")
		}
		if mtu, ok := a.IPv6().PathMTU(mustAddr("2001:db8:2::2")); !ok || mtu != 1280 {
			t.Errorf("path MTU %d %v, want 1280", mtu, ok)
		}
		if r.Stats()["ipv6.forwarded"] == 0 {
			t.Errorf("router forwarded nothing")
		}
	})
}

func TestIPv6DADDuplicate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := &netw{t: t}
		a, b := pair6(t, n, 1500)
		dup := netip.MustParsePrefix("2001:db8::7/64")
		if err := a.AddAddress("eth0", dup); err != nil {
			t.Fatal(err)
		}
		settle()
		if !hasAddr(a, "eth0", dup.Addr()) {
			t.Fatalf("a's address not assigned: %v", a.Interface("eth0").Addrs())
		}
		// b tries the same address: a defends it (RFC 4862 §5.4.3), b
		// never assigns it.
		if err := b.AddAddress("eth0", dup); err != nil {
			t.Fatal(err)
		}
		if hasAddr(b, "eth0", dup.Addr()) {
			t.Fatalf("assigned before DAD finished")
		}
		settle()
		if hasAddr(b, "eth0", dup.Addr()) {
			t.Errorf("duplicate address assigned on b")
		}
		var found bool
		for _, ai := range b.NDP().Addresses(b.Interface("eth0").Index()) {
			if ai.Prefix == dup {
				found = true
				if !ai.Duplicate {
					t.Errorf("b's address %+v not marked duplicate", ai)
				}
			}
		}
		if !found || b.Stats()["ndp.dad.duplicates"] != 1 {
			t.Errorf("DAD duplicates %d, addresses %+v", b.Stats()["ndp.dad.duplicates"], b.NDP().Addresses(b.Interface("eth0").Index()))
		}
		if !hasAddr(a, "eth0", dup.Addr()) {
			t.Errorf("a lost its address")
		}
		// Removing the duplicate forgets it; adding another works.
		if err := b.RemoveAddress("eth0", dup.Addr()); err != nil {
			t.Errorf("remove duplicate: %v", err)
		}
		if err := b.AddAddress("eth0", netip.MustParsePrefix("2001:db8::8/64")); err != nil {
			t.Fatal(err)
		}
		settle()
		if err := ping6(t, a, mustAddr("2001:db8::8"), 1); err != nil {
			t.Errorf("ping b's second address: %v", err)
		}
	})
}

// Dual-stack sockets: "udp" and "tcp" listeners on an empty host take
// IPv4 and IPv6, as Go's net does; V6Only ones only IPv6.
func TestDualStackSockets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := &netw{t: t}
		a, b := pair6(t, n, 1500)
		for i, s := range []*stack.Stack{a, b} {
			if err := s.AddAddress("eth0", netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), 24)); err != nil {
				t.Fatal(err)
			}
		}
		static6(t, a, b)
		echoServer(t, b) // "udp", ":7"
		udpRoundTrip(t, a, "10.0.0.2", []byte("IPv4 to a dual-stack socket"))
		udpRoundTrip(t, a, "2001:db8::2", []byte("IPv6 to a dual-stack socket"))

		ln, err := socket.Listen(b, "tcp", ":80")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		if got := ln.Addr().String(); got != "[::]:80" {
			t.Errorf("listener address %s, want [::]:80", got)
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() { io.Copy(c, c); c.Close() }()
			}
		}()
		for _, dst := range []string{"10.0.0.2:80", "[2001:db8::2]:80"} {
			c, err := socket.Dial(a, "tcp", dst)
			if err != nil {
				t.Fatalf("dial %s: %v", dst, err)
			}
			c.Write([]byte("ping"))
			b := make([]byte, 4)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadFull(c, b); err != nil || string(b) != "ping" {
				t.Errorf("echo over %s: %q %v", dst, b, err)
			}
			c.Close()
		}

		// A V6Only endpoint leaves IPv4 to others: nothing listens.
		ep, err := b.UDP().Bind(netip.MustParseAddrPort("[::]:9"), udp.Options{V6Only: true})
		if err != nil {
			t.Fatal(err)
		}
		defer ep.Close()
		c, err := socket.DialUDP(a, netip.AddrPort{}, netip.MustParseAddrPort("10.0.0.2:9"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("x"))
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Read(make([]byte, 10)); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("IPv4 to a V6Only endpoint: %v, want ECONNREFUSED", err)
		}
	})
}

// routerLine6 is host h -- router r -- c: r forwards IPv6 and advertises
// adv on eth0 (where it also has 2001:db8:1::1/64); r's eth1 is
// 2001:db8:2::1/64, c is 2001:db8:2::2/64 with r as its default router.
// h has no configuration at all.
func routerLine6(t *testing.T, n *netw, adv ndp.AdvertConfig) (h, r, c *stack.Stack) {
	h, r, c = n.stack("h"), n.stack("r"), n.stack("c")
	if err := r.SetSysctl("net.inet6.ip6.forwarding", "1"); err != nil {
		t.Fatal(err)
	}
	eh, er := pipe.New(pipe.Config{MTU: 1500})
	if _, err := h.AddInterface("eth0", eh); err != nil {
		t.Fatal(err)
	}
	n.attach(r, "eth0", "2001:db8:1::1/64", er)
	n.connect(r, "eth1", "2001:db8:2::1/64", c, "eth0", "2001:db8:2::2/64", 1500)
	if err := c.AddRoute(route.Route{Dst: netip.MustParsePrefix("::/0"), Gateway: netip.MustParseAddr("2001:db8:2::1")}); err != nil {
		t.Fatal(err)
	}
	if err := r.SetRouterAdvert("eth0", &adv); err != nil {
		t.Fatal(err)
	}
	return h, r, c
}

// slaacAddr is the address SLAAC forms on s's interface from prefix: the
// modified EUI-64 interface identifier (RFC 4291 §2.5.1).
func slaacAddr(t *testing.T, s *stack.Stack, ifname, prefix string) netip.Addr {
	a, ok := wire.AddrWithInterfaceID(netip.MustParsePrefix(prefix), wire.EUI64(s.Interface(ifname).HardwareAddr()))
	if !ok {
		t.Fatalf("no SLAAC address for %s", prefix)
	}
	return a
}

// defaultRoutes lists s's IPv6 default routes.
func defaultRoutes(s *stack.Stack) []route.Route {
	var out []route.Route
	for _, r := range s.Routes().Routes() {
		if r.Dst == netip.MustParsePrefix("::/0") {
			out = append(out, r)
		}
	}
	return out
}

// sourceFor is the source address s picks for a UDP socket connected to
// dst.
func sourceFor(t *testing.T, s *stack.Stack, dst netip.Addr) netip.Addr {
	t.Helper()
	c, err := socket.DialUDP(s, netip.AddrPort{}, netip.AddrPortFrom(dst, 7))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return netip.MustParseAddrPort(c.LocalAddr().String()).Addr()
}

func TestIPv6RouterAdvertSLAAC(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := &netw{t: t}
		h, r, c := routerLine6(t, n, ndp.AdvertConfig{
			MaxInterval: 10 * time.Second,
			Prefixes: []wire.NDPPrefixInfo{{
				Prefix: netip.MustParsePrefix("2001:db8:1::/64"), OnLink: true, Autonomous: true,
				ValidLifetime: 24 * time.Hour, PreferredLifetime: 4 * time.Hour,
			}},
		})
		<-time.After(30 * time.Second)
		synctest.Wait()

		global := slaacAddr(t, h, "eth0", "2001:db8:1::/64")
		if !hasAddr(h, "eth0", global) {
			t.Fatalf("no SLAAC address %v: %v (ndp %+v)", global, h.Interface("eth0").Addrs(), h.NDP().Addresses(h.Interface("eth0").Index()))
		}
		rll := linkLocal(r, "eth0")
		drs := defaultRoutes(h)
		if len(drs) != 1 || drs[0].Gateway.WithZone("") != rll || drs[0].Origin != route.OriginRA {
			t.Fatalf("default routes %+v, want one via %v", drs, rll)
		}
		// The router got every solicitation the host sent (none when the
		// router's first advertisement came before the host began to
		// solicit: RFC 4861 §6.3.7) and sent unsolicited
		// advertisements: the first few at most 16 s apart, then every
		// 3.3 to 10 s.
		rs, st := r.Stats(), h.Stats()
		if st["ndp.out.router-solicitation"] != rs["ndp.in.router-solicitation"] {
			t.Errorf("solicitations: host sent %d, router got %d", st["ndp.out.router-solicitation"], rs["ndp.in.router-solicitation"])
		}
		if got := rs["ndp.out.router-advertisement"]; got < 3 || got > 12 {
			t.Errorf("router sent %d advertisements in 30 s", got)
		}
		// RFC 6724: a global source for a global destination.
		dst := netip.MustParseAddr("2001:db8:2::2")
		if src := sourceFor(t, h, dst); src != global {
			t.Errorf("source for %v = %v, want %v", dst, src, global)
		}
		if err := ping6(t, h, dst, 1); err != nil {
			t.Fatalf("ping through the router: %v", err)
		}
		if got := r.Stats()["ipv6.forwarded"]; got < 2 {
			t.Errorf("router forwarded %d packets", got)
		}
		_ = c

		// Withdrawal (RFC 4861 §6.2.5): the final advertisement's router
		// lifetime 0 removes the default route; the address stays.
		if err := r.SetRouterAdvert("eth0", nil); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if drs := defaultRoutes(h); len(drs) != 0 {
			t.Errorf("default routes after withdrawal: %+v", drs)
		}
		if len(h.NDP().Routers(h.Interface("eth0").Index())) != 0 {
			t.Errorf("router list not empty")
		}
		if !hasAddr(h, "eth0", global) {
			t.Errorf("SLAAC address gone with the router")
		}
		if err := ping6(t, h, dst, 2); err == nil {
			t.Errorf("ping without a default route worked")
		}
		// No more advertisements.
		before := r.Stats()["ndp.out.router-advertisement"]
		<-time.After(time.Minute)
		synctest.Wait()
		if got := r.Stats()["ndp.out.router-advertisement"]; got != before {
			t.Errorf("router advertised %d times after stopping", got-before)
		}
	})
}

func TestIPv6RouterAdvertDeprecatedSource(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := &netw{t: t}
		// Two prefixes; rule 8 prefers 2001:db8:1:: for 2001:db8:2::2
		// until its preferred lifetime ends (RFC 6724 rule 3).
		h, r, _ := routerLine6(t, n, ndp.AdvertConfig{
			MaxInterval: 10 * time.Second,
			Prefixes: []wire.NDPPrefixInfo{{
				Prefix: netip.MustParsePrefix("2001:db8:1::/64"), OnLink: true, Autonomous: true,
				ValidLifetime: 24 * time.Hour, PreferredLifetime: 0,
			}, {
				Prefix: netip.MustParsePrefix("2001:db8:f::/64"), OnLink: true, Autonomous: true,
				ValidLifetime: 24 * time.Hour, PreferredLifetime: 4 * time.Hour,
			}},
		})
		<-time.After(30 * time.Second)
		synctest.Wait()
		a1, af := slaacAddr(t, h, "eth0", "2001:db8:1::/64"), slaacAddr(t, h, "eth0", "2001:db8:f::/64")
		if !hasAddr(h, "eth0", a1) || !hasAddr(h, "eth0", af) {
			t.Fatalf("addresses %v", h.Interface("eth0").Addrs())
		}
		dst := netip.MustParseAddr("2001:db8:2::2")
		if src := sourceFor(t, h, dst); src != af {
			t.Errorf("source for %v = %v, want the preferred %v", dst, src, af)
		}
		// Preferred again: rule 8 picks the longer match.
		cfg, _ := r.NDP().Advertising(r.Interface("eth0").Index())
		cfg.Prefixes[0].PreferredLifetime = time.Hour
		if err := r.SetRouterAdvert("eth0", &cfg); err != nil {
			t.Fatal(err)
		}
		<-time.After(30 * time.Second)
		synctest.Wait()
		if src := sourceFor(t, h, dst); src != a1 {
			t.Errorf("source for %v = %v, want %v", dst, src, a1)
		}
	})
}

// TestIPv6RouterAdvertRemoveInterface: removing the router's advertising
// interface sends the final advertisement first (RFC 4861 §6.2.5).
func TestIPv6RouterAdvertRemoveInterface(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := &netw{t: t}
		h, r, _ := routerLine6(t, n, ndp.AdvertConfig{MaxInterval: 10 * time.Second})
		<-time.After(30 * time.Second)
		synctest.Wait()
		if len(defaultRoutes(h)) != 1 {
			t.Fatalf("no default route: %+v", h.Routes().Routes())
		}
		if err := r.RemoveInterface("eth0"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if drs := defaultRoutes(h); len(drs) != 0 {
			t.Errorf("default routes after the router's interface went: %+v", drs)
		}
	})
}
