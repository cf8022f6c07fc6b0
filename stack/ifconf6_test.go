package stack_test

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"ustack/buf"
	"ustack/link"
	"ustack/link/pipe"
	"ustack/network/ndp"
	"ustack/socket"
	"ustack/stack"
	"ustack/wire"
)

// A router advertisement's MTU option and Cur Hop Limit set IPv6's link
// MTU and default hop limit on the interface that heard it (RFC 4861
// §6.3.4); IPv4 on the same interface keeps the interface's MTU and
// net.inet.ip.ttl.

// recordLink is a link that keeps a copy of every frame written to it
// and lets the test inject frames.
type recordLink struct {
	link.Endpoint
	d      link.Dispatcher
	mu     sync.Mutex
	frames [][]byte
}

func (l *recordLink) Attach(d link.Dispatcher) {
	l.d = d
	l.Endpoint.Attach(d)
}

// inject delivers frame as if it came from the link.
func (l *recordLink) inject(frame []byte) {
	l.d.DeliverBatch(l, []*buf.Packet{buf.FromBytes(frame)})
}

func (l *recordLink) WriteBatch(pkts []*buf.Packet) (int, error) {
	l.mu.Lock()
	for _, p := range pkts {
		l.frames = append(l.frames, p.ToBytes())
	}
	l.mu.Unlock()
	return l.Endpoint.WriteBatch(pkts)
}

// take returns the frames written since the last take.
func (l *recordLink) take() [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.frames
	l.frames = nil
	return f
}

// raHost is router r -- host h on one 1500-byte link, with 10.0.1.0/24
// and 2001:db8:1::/64 on both; r advertises adv. It returns h's link,
// recording what h sends.
func raHost(t *testing.T, adv ndp.AdvertConfig) (h, r *stack.Stack, rec *recordLink) {
	n := &netw{t: t}
	h, r = n.stack("h"), n.stack("r")
	if err := r.SetSysctl("net.inet6.ip6.forwarding", "1"); err != nil {
		t.Fatal(err)
	}
	eh, er := pipe.New(pipe.Config{MTU: 1500})
	rec = &recordLink{Endpoint: eh}
	n.attach(h, "eth0", "10.0.1.2/24", rec)
	n.attach(r, "eth0", "10.0.1.1/24", er)
	for _, x := range []struct {
		s *stack.Stack
		a string
	}{{h, "2001:db8:1::2/64"}, {r, "2001:db8:1::1/64"}} {
		if err := x.s.AddAddress("eth0", netip.MustParsePrefix(x.a)); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.SetRouterAdvert("eth0", &adv); err != nil {
		t.Fatal(err)
	}
	<-time.After(30 * time.Second)
	synctest.Wait()
	return h, r, rec
}

// readN reads one datagram from pc within 5 s and returns its length.
func readN(t *testing.T, pc net.PacketConn) int {
	t.Helper()
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 65536)
	n, _, err := pc.ReadFrom(b)
	if err != nil {
		t.Fatalf("ReadFrom: %v", err)
	}
	return n
}

// sendUDP sends one datagram of size bytes from s to dst and reads it on
// pc at the other end.
func sendUDP(t *testing.T, s *stack.Stack, dst netip.AddrPort, size int, pc net.PacketConn) {
	t.Helper()
	c, err := socket.DialUDP(s, netip.AddrPort{}, dst)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(bytes.Repeat([]byte{0x5a}, size)); err != nil {
		t.Fatalf("Write %d bytes to %v: %v", size, dst, err)
	}
	if n := readN(t, pc); n != size {
		t.Errorf("received %d bytes from %v, want %d", n, dst, size)
	}
}

// ipFrames splits Ethernet frames into IPv4 and IPv6 packets.
func ipFrames(frames [][]byte) (v4, v6 [][]byte) {
	for _, f := range frames {
		e, err := wire.ParseEthernet(f)
		if err != nil {
			continue
		}
		switch e.Type() {
		case wire.EtherTypeIPv4:
			v4 = append(v4, f[wire.EthernetHeaderLen:])
		case wire.EtherTypeIPv6:
			v6 = append(v6, f[wire.EthernetHeaderLen:])
		}
	}
	return v4, v6
}

// routerAdvert is an Ethernet frame with a router advertisement from
// fe80::99 to all nodes, with an MTU option of mtu, that is not from a
// default router.
func routerAdvert(mtu uint32) []byte {
	src, dst := mustAddr("fe80::99"), mustAddr("ff02::1")
	mac := wire.MAC{2, 0, 0, 0, 0, 0x99}
	ra := wire.NDPRouterAdvertFields{MTU: mtu, SourceLLA: &mac}
	body := make([]byte, ra.Len())
	ra.Encode(body)
	wire.ICMPv6(body).UpdateChecksum(src, dst)
	frame := make([]byte, wire.EthernetHeaderLen+wire.IPv6HeaderLen+len(body))
	(&wire.EthernetFields{Dst: wire.MulticastMACv6(dst.As16()), Src: mac, Type: wire.EtherTypeIPv6}).Encode(frame)
	(&wire.IPv6Fields{PayloadLen: len(body), NextHeader: wire.IPProtoICMPv6, HopLimit: 255, Src: src, Dst: dst}).
		Encode(frame[wire.EthernetHeaderLen:])
	copy(frame[wire.EthernetHeaderLen+wire.IPv6HeaderLen:], body)
	return frame
}

func TestIPv6RouterAdvertMTUAndHopLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		adv := ndp.AdvertConfig{MaxInterval: 10 * time.Second}
		h, r, rec := raHost(t, adv)
		idx := h.Interface("eth0").Index()
		v6 := h.IPv6()
		if r.Stats()["ndp.out.router-advertisement"] == 0 {
			t.Fatalf("router sent no advertisement")
		}
		if got := v6.InterfaceMTU(idx); got != 1500 {
			t.Errorf("IPv6 MTU %d, want the link's 1500", got)
		}
		if got := v6.InterfaceHopLimit(idx); got != 64 {
			t.Errorf("hop limit %d, want the default 64", got)
		}
		// An MTU above the link's or below the IPv6 minimum is ignored
		// (RFC 4861 §6.3.4).
		for _, mtu := range []uint32{9000, 1501, 1279} {
			before := h.Stats()["ndp.in.router-advertisement"]
			rec.inject(routerAdvert(mtu))
			synctest.Wait()
			if h.Stats()["ndp.in.router-advertisement"] != before+1 {
				t.Fatalf("advertisement with MTU %d not received: %v", mtu, h.Stats())
			}
			if got := v6.InterfaceMTU(idx); got != 1500 {
				t.Errorf("IPv6 MTU after an advertised %d: %d, want 1500", mtu, got)
			}
		}

		adv.MTU, adv.CurHopLimit = 1400, 17
		if err := r.SetRouterAdvert("eth0", &adv); err != nil {
			t.Fatal(err)
		}
		<-time.After(30 * time.Second)
		synctest.Wait()
		if got := v6.InterfaceMTU(idx); got != 1400 {
			t.Fatalf("IPv6 MTU after an advertised 1400: %d", got)
		}
		if got := v6.InterfaceHopLimit(idx); got != 17 {
			t.Errorf("IPv6 hop limit after an advertised 17: %d", got)
		}
		// IPv4's MTU, the stack's defaults and the other interfaces
		// stay.
		if got := h.Interface("eth0").MTU(); got != 1500 {
			t.Errorf("interface (IPv4) MTU %d, want 1500", got)
		}
		if got, _ := h.GetSysctl("net.inet6.ip6.hlim"); got != "64" {
			t.Errorf("net.inet6.ip6.hlim = %s, want 64", got)
		}
		if got := v6.InterfaceHopLimit(h.Interface("lo").Index()); got != 64 {
			t.Errorf("loopback hop limit %d, want 64", got)
		}
		if rt, err := v6.Route(mustAddr("2001:db8:1::1"), netip.Addr{}, 0); err != nil || rt.MTU != 1400 {
			t.Errorf("route MTU %d (%v), want 1400", rt.MTU, err)
		}

		pc6, err := socket.ListenPacket(r, "udp6", "[::]:9")
		if err != nil {
			t.Fatal(err)
		}
		defer pc6.Close()
		pc4, err := socket.ListenPacket(r, "udp4", "0.0.0.0:10")
		if err != nil {
			t.Fatal(err)
		}
		defer pc4.Close()
		dst6 := netip.MustParseAddrPort("[2001:db8:1::1]:9")
		dst4 := netip.MustParseAddrPort("10.0.1.1:10")
		// Small datagrams first: neighbour and address resolution.
		sendUDP(t, h, dst6, 10, pc6)
		sendUDP(t, h, dst4, 10, pc4)
		rec.take()

		// IPv6: 1420 bytes of data make 1468-byte packets, over the
		// IPv6 MTU: fragments of at most 1400 bytes, hop limit 17.
		sendUDP(t, h, dst6, 1420, pc6)
		_, v6pkts := ipFrames(rec.take())
		frags := 0
		for _, b := range v6pkts {
			ip, err := wire.ParseIPv6(b)
			if err != nil {
				t.Fatal(err)
			}
			if ip.NextHeader() != wire.IPProtoFragment {
				continue
			}
			frags++
			if len(b) > 1400 {
				t.Errorf("IPv6 fragment of %d bytes over the advertised MTU", len(b))
			}
			if ip.HopLimit() != 17 {
				t.Errorf("IPv6 hop limit %d, want the advertised 17", ip.HopLimit())
			}
		}
		if frags != 2 {
			t.Errorf("%d IPv6 fragments, want 2 (%d IPv6 packets)", frags, len(v6pkts))
		}

		// IPv4: 1472 bytes of data make one 1500-byte packet, not
		// fragmented, with the default TTL.
		sendUDP(t, h, dst4, 1472, pc4)
		v4pkts, _ := ipFrames(rec.take())
		udp4 := 0
		for _, b := range v4pkts {
			ip, err := wire.ParseIPv4(b)
			if err != nil || ip.Protocol() != wire.IPProtoUDP {
				continue
			}
			udp4++
			if len(b) != 1500 || ip.MoreFragments() || ip.FragmentOffset() != 0 {
				t.Errorf("IPv4 packet of %d bytes, MF %v, offset %d; want one whole 1500-byte packet",
					len(b), ip.MoreFragments(), ip.FragmentOffset())
			}
			if ip.TTL() != 64 {
				t.Errorf("IPv4 TTL %d, want 64", ip.TTL())
			}
		}
		if udp4 != 1 {
			t.Errorf("%d IPv4 UDP packets, want 1", udp4)
		}

		// TCP over IPv6 takes its MSS from the IPv6 MTU.
		ln, err := socket.Listen(r, "tcp", ":80")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		for _, tc := range []struct {
			dst string
			mss int
		}{{"[2001:db8:1::1]:80", 1400 - 60}, {"10.0.1.1:80", 1500 - 40}} {
			c, err := socket.DialTCP(h, netip.AddrPort{}, netip.MustParseAddrPort(tc.dst))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Info().AdvMSS; got != tc.mss {
				t.Errorf("MSS to %s = %d, want %d", tc.dst, got, tc.mss)
			}
			c.Close()
		}

		// A later advertisement of the link's own MTU raises IPv6's MTU
		// back (RFC 4861 §6.3.4: the advertised value replaces the old).
		rec.inject(routerAdvert(1500))
		synctest.Wait()
		if got := v6.InterfaceMTU(idx); got != 1500 {
			t.Errorf("IPv6 MTU after an advertised 1500: %d, want 1500", got)
		}
	})
}

// TestIPv6InterfaceMTURange checks the bounds of the per-interface IPv6
// MTU and hop limit set directly.
func TestIPv6InterfaceMTURange(t *testing.T) {
	s, _ := sinkStack(t)
	v6, idx := s.IPv6(), s.Interface("eth0").Index()
	for _, mtu := range []int{1279, 1501, -1} {
		if err := v6.SetInterfaceMTU(idx, mtu); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("SetInterfaceMTU(%d): %v, want EINVAL", mtu, err)
		}
	}
	if err := v6.SetInterfaceMTU(99, 1400); !errors.Is(err, syscall.ENODEV) {
		t.Errorf("SetInterfaceMTU on no interface: %v", err)
	}
	for _, mtu := range []int{1280, 1500, 1400} {
		if err := v6.SetInterfaceMTU(idx, mtu); err != nil {
			t.Fatalf("SetInterfaceMTU(%d): %v", mtu, err)
		}
		if got := v6.InterfaceMTU(idx); got != mtu {
			t.Errorf("InterfaceMTU = %d, want %d", got, mtu)
		}
	}
	// The interface's MTU, lowered below, caps it; 0 follows the
	// interface again.
	if err := s.Interface("eth0").SetMTU(1300); err != nil {
		t.Fatal(err)
	}
	if got := v6.InterfaceMTU(idx); got != 1300 {
		t.Errorf("InterfaceMTU under a 1300 interface = %d", got)
	}
	if err := v6.SetInterfaceMTU(idx, 0); err != nil {
		t.Fatal(err)
	}
	s.Interface("eth0").SetMTU(1500)
	if got := v6.InterfaceMTU(idx); got != 1500 {
		t.Errorf("InterfaceMTU after reset = %d, want 1500", got)
	}
	if err := v6.SetInterfaceHopLimit(idx, 5); err != nil {
		t.Fatal(err)
	}
	s.SetSysctl("net.inet6.ip6.hlim", "100")
	if got := v6.InterfaceHopLimit(idx); got != 5 {
		t.Errorf("InterfaceHopLimit = %d, want 5", got)
	}
	v6.SetInterfaceHopLimit(idx, 0)
	if got := v6.InterfaceHopLimit(idx); got != 100 {
		t.Errorf("InterfaceHopLimit after reset = %d, want net.inet6.ip6.hlim's 100", got)
	}
}
