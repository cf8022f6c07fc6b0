package ipv6

import (
	"bytes"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"

	"ustack/buf"
	"ustack/internal/stats"
	"ustack/proto"
	"ustack/wire"
)

func TestValidation(t *testing.T) {
	good := ipPacket(wire.IPv6Fields{NextHeader: wire.IPProtoUDP, Src: peer, Dst: local},
		udpDatagram(peer, local, 1, 2, []byte("hi")))
	setSrc := func(a string) func([]byte) []byte {
		return func(b []byte) []byte { wire.IPv6(b).SetSrc(netip.MustParseAddr(a)); return b }
	}
	setDst := func(a string) func([]byte) []byte {
		return func(b []byte) []byte { wire.IPv6(b).SetDst(netip.MustParseAddr(a)); return b }
	}
	tests := []struct {
		name   string
		mangle func(b []byte) []byte
		reason proto.DropReason
	}{
		{"truncated", func(b []byte) []byte { return b[:39] }, proto.DropTruncated},
		{"version 4", func(b []byte) []byte { b[0] = 0x40; return b }, proto.DropBadVersion},
		{"payload length past packet", func(b []byte) []byte { wire.IPv6(b).SetPayloadLen(len(b)); return b }, proto.DropBadLength},
		{"jumbogram", func(b []byte) []byte {
			wire.IPv6(b).SetPayloadLen(0)
			wire.IPv6(b).SetNextHeader(wire.IPProtoHopByHop)
			return b
		}, proto.DropUnsupported},
		{"multicast source", setSrc("ff02::1"), proto.DropBadSource},
		{"loopback source", setSrc("::1"), proto.DropBadSource},
		{"v4-mapped source", setSrc("::ffff:10.0.0.1"), proto.DropBadSource},
		{"unspecified destination", setDst("::"), proto.DropMalformed},
		{"loopback destination", setDst("::1"), proto.DropNotForUs},
		{"multicast scope 0", setDst("ff00::1"), proto.DropMalformed},
		{"interface-local multicast from a link", setDst("ff01::1"), proto.DropNotForUs},
		{"group not joined", setDst("ff02::1234"), proto.DropNotForUs},
		{"another interface's link-local", setDst("fe80::2"), proto.DropForwardingOff},
		{"not ours, no forwarding", setDst("2001:db8:5::1"), proto.DropForwardingOff},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			r.input(r.if1, tc.mangle(bytes.Clone(good)))
			if got := r.p.counters.Dropped(tc.reason); got != 1 {
				t.Errorf("drop %v = %d, want 1 (drops: %d total)", tc.reason, got, r.p.counters.TotalDrops())
			}
			if len(r.udp.got) != 0 {
				t.Errorf("invalid packet delivered")
			}
		})
	}
	t.Run("good", func(t *testing.T) {
		r := newRig(t)
		// Ethernet padding after the packet must be cut off.
		r.input(r.if1, append(bytes.Clone(good), 0, 0, 0, 0))
		if len(r.udp.got) != 1 || !bytes.Equal(r.udp.got[0], good[40:]) {
			t.Fatalf("got %x, want %x", r.udp.got, good[40:])
		}
		if i := r.udp.info[0]; i.Src != peer || i.Dst != local || i.IfIndex != 1 || i.TTL != 64 || i.Proto != wire.IPProtoUDP || i.Multicast {
			t.Errorf("info = %+v", i)
		}
	})
	t.Run("hop limit 0 is delivered", func(t *testing.T) {
		r := newRig(t)
		b := bytes.Clone(good)
		wire.IPv6(b).SetHopLimit(0)
		r.input(r.if1, b)
		if len(r.udp.got) != 1 || r.p.hlimZero.Load() != 1 {
			t.Errorf("delivered %d, hlim_zero %d", len(r.udp.got), r.p.hlimZero.Load())
		}
	})
	t.Run("global address on another interface", func(t *testing.T) {
		r := newRig(t)
		b := bytes.Clone(good)
		wire.IPv6(b).SetDst(local2) // weak host model
		r.input(r.if1, b)
		if len(r.udp.got) != 1 {
			t.Errorf("not delivered")
		}
	})
	t.Run("unspecified source is accepted", func(t *testing.T) {
		r := newRig(t)
		r.input(r.if1, ipPacket(wire.IPv6Fields{NextHeader: wire.IPProtoUDP, Src: netip.IPv6Unspecified(), Dst: local},
			udpDatagram(netip.IPv6Unspecified(), local, 1, 2, nil)))
		if len(r.udp.got) != 1 {
			t.Errorf("not delivered")
		}
	})
}

func TestMulticastGroups(t *testing.T) {
	r := newRig(t)
	nd := &ndSink{}
	r.p.SetNDHandler(nd)
	send := func(dst netip.Addr) bool {
		n := len(r.udp.got)
		r.input(r.if1, ipPacket(wire.IPv6Fields{NextHeader: wire.IPProtoUDP, Src: peerLL, Dst: dst}, udpDatagram(peerLL, dst, 1, 2, nil)))
		return len(r.udp.got) > n
	}
	if !send(netip.MustParseAddr("ff02::1")) {
		t.Errorf("all-nodes not accepted")
	}
	if !send(wire.SolicitedNodeMulticast(local)) || !send(wire.SolicitedNodeMulticast(localLL)) {
		t.Errorf("solicited-node group of an address not accepted")
	}
	if send(wire.SolicitedNodeMulticast(netip.MustParseAddr("2001:db8:1::abcd"))) {
		t.Errorf("another solicited-node group accepted")
	}
	g := netip.MustParseAddr("ff02::fb")
	if send(g) {
		t.Fatalf("group accepted before joining")
	}
	if err := r.p.JoinGroup(0, netip.MustParseAddr("ff02::fb%eth0")); err != nil {
		t.Fatal(err)
	}
	if err := r.p.JoinGroup(1, g); err != nil {
		t.Fatal(err)
	}
	if !send(g) || r.udp.info[len(r.udp.info)-1].Multicast != true {
		t.Errorf("joined group not accepted as multicast")
	}
	if got := r.p.Groups(1); !slices.Contains(got, g) || !slices.Contains(got, wire.SolicitedNodeMulticast(local)) ||
		slices.Contains(got, netip.MustParseAddr("ff02::1")) {
		t.Errorf("Groups(1) = %v", got)
	}
	r.p.LeaveGroup(1, g)
	if !send(g) {
		t.Errorf("left once of two joins, group gone")
	}
	r.p.LeaveGroup(1, g)
	if send(g) {
		t.Errorf("group accepted after leaving")
	}
	if err := r.p.LeaveGroup(1, g); !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Errorf("leave without join: %v", err)
	}
	if err := r.p.JoinGroup(1, local); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("join of a unicast address: %v", err)
	}
	if want := []string{"join ff02::fb", "leave ff02::fb"}; !slices.Equal(nd.changes, want) {
		t.Errorf("observer heard %v, want %v", nd.changes, want)
	}
}

func TestRoute(t *testing.T) {
	r := newRig(t)
	tests := []struct {
		name             string
		dst, src         string
		ifIndex          int
		wantSrc, wantHop string
		wantIf           int
		wantErr          error
		multicast, local bool
	}{
		{name: "on-link global", dst: "2001:db8:1::2", wantSrc: "2001:db8:1::1", wantHop: "2001:db8:1::2", wantIf: 1},
		{name: "default via link-local gateway", dst: "2001:db8:77::1", wantSrc: "2001:db8:2::1", wantHop: "fe80::ff", wantIf: 2},
		{name: "link-local needs a zone", dst: "fe80::99", wantErr: syscall.EINVAL},
		{name: "link-local zone by name", dst: "fe80::99%eth0", wantSrc: "fe80::1", wantHop: "fe80::99", wantIf: 1},
		{name: "link-local zone by index", dst: "fe80::99%2", wantSrc: "fe80::2", wantHop: "fe80::99", wantIf: 2},
		{name: "link-local by ifIndex", dst: "fe80::99", ifIndex: 1, wantSrc: "fe80::1", wantHop: "fe80::99", wantIf: 1},
		{name: "zone and ifIndex differ", dst: "fe80::99%eth0", ifIndex: 2, wantErr: syscall.EINVAL},
		{name: "unknown zone", dst: "fe80::99%nope", wantErr: syscall.ENODEV},
		{name: "link-scope multicast", dst: "ff02::1%eth1", wantSrc: "fe80::2", wantHop: "ff02::1", wantIf: 2, multicast: true},
		{name: "global multicast", dst: "ff0e::1", ifIndex: 1, wantSrc: "2001:db8:1::1", wantHop: "ff0e::1", wantIf: 1, multicast: true},
		{name: "bound source", dst: "2001:db8:1::2", src: "2001:db8:2::1", wantSrc: "2001:db8:2::1", wantHop: "2001:db8:1::2", wantIf: 1},
		{name: "source not ours", dst: "2001:db8:1::2", src: "2001:db8:1::5", wantErr: syscall.EADDRNOTAVAIL},
		{name: "link-local source of another interface", dst: "fe80::99%eth1", src: "fe80::1", wantErr: syscall.EADDRNOTAVAIL},
		{name: "our own address", dst: "2001:db8:2::1", wantSrc: "2001:db8:2::1", wantHop: "2001:db8:2::1", wantIf: 9, local: true},
		{name: "loopback", dst: "::1", wantSrc: "::1", wantHop: "::1", wantIf: 9, local: true},
		{name: "IPv4", dst: "10.0.0.1", wantErr: syscall.EAFNOSUPPORT},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var src netip.Addr
			if tc.src != "" {
				src = netip.MustParseAddr(tc.src)
			}
			rt, err := r.p.Route(netip.MustParseAddr(tc.dst), src, tc.ifIndex)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if rt.Src.String() != tc.wantSrc || rt.NextHop.String() != tc.wantHop || rt.IfIndex != tc.wantIf ||
				rt.Multicast != tc.multicast || rt.Local != tc.local || rt.Dst.Zone() != "" {
				t.Errorf("Route = %+v", rt)
			}
		})
	}
}

func TestDefaultSource(t *testing.T) {
	r := newRig(t)
	only := &fakeIf{index: 5, name: "ll", mtu: 1500, addrs: []netip.Prefix{netip.MustParsePrefix("fe80::5/64")}}
	multi := &fakeIf{index: 6, name: "m", mtu: 1500, addrs: []netip.Prefix{
		netip.MustParsePrefix("fe80::6/64"), netip.MustParsePrefix("2001:db8:a::6/64"), netip.MustParsePrefix("fd00:b::6/64")}}
	tests := []struct {
		out       *fakeIf
		dst, want string
	}{
		{r.if1, "2001:db8:9::1", "2001:db8:1::1"},
		{r.if1, "fe80::1234", "fe80::1"},
		{r.if1, "ff02::2", "fe80::1"},
		{r.if1, "ff05::2", "2001:db8:1::1"},
		{r.if1, "2001:db8:1::1", "2001:db8:1::1"},
		// Rule 2 before rule 5: a global address of another interface
		// rather than the outgoing one's link-local.
		{only, "2001:db8:9::1", "2001:db8:1::1"},
		// Rule 8: the longest matching prefix.
		{multi, "fd00:b::99", "fd00:b::6"},
		{multi, "2001:db8:a::99", "2001:db8:a::6"},
	}
	for _, tc := range tests {
		if got := r.p.DefaultSource(tc.out, netip.MustParseAddr(tc.dst)); got.String() != tc.want {
			t.Errorf("source for %s via %s = %v, want %s", tc.dst, tc.out.name, got, tc.want)
		}
	}
	fixed := netip.MustParseAddr("2001:db8:2::1")
	r.p.SetSourceSelector(func(proto.Interface, netip.Addr) netip.Addr { return fixed })
	if rt, err := r.p.Route(peer, netip.Addr{}, 0); err != nil || rt.Src != fixed {
		t.Errorf("replaced selector not used: %+v %v", rt, err)
	}
	r.p.SetSourceSelector(nil)
	if rt, _ := r.p.Route(peer, netip.Addr{}, 0); rt.Src != local {
		t.Errorf("default selector not restored: %v", rt.Src)
	}
}

// fragments cuts a datagram with the package's own fragmenter.
func fragments(t *testing.T, p *Protocol, f wire.IPv6Fields, id uint32, payload []byte, mtu int) [][]byte {
	t.Helper()
	if f.HopLimit == 0 {
		f.HopLimit = 64
	}
	var out [][]byte
	err := p.fragment(&f, id, buf.FromBytes(payload), mtu, func(frag *buf.Packet) error {
		out = append(out, frag.ToBytes())
		frag.Release()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestWritePacket(t *testing.T) {
	r := newRig(t)
	rt, err := r.p.Route(peer, netip.Addr{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	small := udpDatagram(local, peer, 1, 2, []byte("x"))
	if err := r.p.WritePacket(rt, wire.IPProtoUDP, proto.WriteParams{TOS: 0xb8}, buf.FromBytes(small)); err != nil {
		t.Fatal(err)
	}
	sent := r.if1.take()
	if len(sent) != 1 || sent[0].next != peer {
		t.Fatalf("sent %v", sent)
	}
	h, _ := wire.ParseIPv6(sent[0].b)
	if h.HopLimit() != DefaultHopLimit || h.TrafficClass() != 0xb8 || h.NextHeader() != wire.IPProtoUDP ||
		h.Src() != local || h.Dst() != peer || !bytes.Equal(h.Payload(), small) {
		t.Errorf("header: hlim %d tc %x nh %v %v->%v", h.HopLimit(), h.TrafficClass(), h.NextHeader(), h.Src(), h.Dst())
	}

	t.Run("fragments", func(t *testing.T) {
		big := udpDatagram(local, peer, 1, 2, pattern(3000))
		if err := r.p.WritePacket(rt, wire.IPProtoUDP, proto.WriteParams{}, buf.FromBytes(big)); err != nil {
			t.Fatal(err)
		}
		sent := r.if1.take()
		if len(sent) != 3 {
			t.Fatalf("%d packets, want 3 fragments", len(sent))
		}
		var got []byte
		var id uint32
		for i, s := range sent {
			h, err := wire.ParseIPv6(s.b)
			if err != nil || len(s.b) > 1500 || h.NextHeader() != wire.IPProtoFragment {
				t.Fatalf("fragment %d: %v, %d bytes, next %v", i, err, len(s.b), h.NextHeader())
			}
			f := wire.IPv6Fragment(h.Payload())
			if i == 0 {
				id = f.ID()
			}
			if f.ID() != id || f.Offset() != len(got) || f.MoreFragments() != (i < 2) || f.NextHeader() != wire.IPProtoUDP {
				t.Errorf("fragment %d: id %x offset %d more %v", i, f.ID(), f.Offset(), f.MoreFragments())
			}
			if i < 2 && (len(h.Payload())-8)%8 != 0 {
				t.Errorf("fragment %d data not a multiple of 8", i)
			}
			got = append(got, h.Payload()[8:]...)
		}
		if !bytes.Equal(got, big) {
			t.Errorf("fragments do not add up to the datagram")
		}
		// A second datagram gets another (random) identification.
		r.p.WritePacket(rt, wire.IPProtoUDP, proto.WriteParams{}, buf.FromBytes(big))
		h, _ := wire.ParseIPv6(r.if1.take()[0].b)
		if wire.IPv6Fragment(h.Payload()).ID() == id {
			t.Errorf("identification repeated")
		}
	})
	t.Run("DF and too big", func(t *testing.T) {
		big := udpDatagram(local, peer, 1, 2, pattern(3000))
		if err := r.p.WritePacket(rt, wire.IPProtoUDP, proto.WriteParams{DF: true}, buf.FromBytes(big)); !errors.Is(err, syscall.EMSGSIZE) {
			t.Errorf("DF over the MTU: %v", err)
		}
		huge := buf.FromBytes(make([]byte, 70000))
		if err := r.p.WritePacket(rt, wire.IPProtoUDP, proto.WriteParams{}, huge); !errors.Is(err, syscall.EMSGSIZE) {
			t.Errorf("payload over 65535: %v", err)
		}
		if len(r.if1.take()) != 0 {
			t.Errorf("refused packets were sent")
		}
	})
	t.Run("multicast hop limit", func(t *testing.T) {
		mr, err := r.p.Route(netip.MustParseAddr("ff02::1%eth0"), netip.Addr{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		r.p.WritePacket(mr, wire.IPProtoUDP, proto.WriteParams{}, buf.FromBytes(small))
		r.p.WritePacket(mr, wire.IPProtoICMPv6, proto.WriteParams{TTL: 255}, buf.FromBytes(small))
		sent := r.if1.take()
		if len(sent) != 2 || sent[0].next != netip.MustParseAddr("ff02::1") {
			t.Fatalf("sent %v", sent)
		}
		if h := wire.IPv6(sent[0].b); h.HopLimit() != 1 || h.Src() != localLL {
			t.Errorf("multicast default hop limit %d from %v", h.HopLimit(), h.Src())
		}
		if h := wire.IPv6(sent[1].b); h.HopLimit() != 255 {
			t.Errorf("asked hop limit 255, got %d", h.HopLimit())
		}
	})
	t.Run("fragments reassemble", func(t *testing.T) {
		r2 := newRig(t)
		big := udpDatagram(peer, local, 1, 2, pattern(5000))
		for _, f := range fragments(t, r2.p, wire.IPv6Fields{NextHeader: wire.IPProtoUDP, Src: peer, Dst: local}, 1, big, 1280) {
			r2.input(r2.if1, f)
		}
		if len(r2.udp.got) != 1 || !bytes.Equal(r2.udp.got[0], big) {
			t.Errorf("own fragments did not reassemble")
		}
	})
}

func TestLocalDelivery(t *testing.T) {
	r := newRig(t)
	// To our own address: through the loopback and back in.
	rt, err := r.p.Route(local2, netip.Addr{}, 0)
	if err != nil || !rt.Local {
		t.Fatalf("Route = %+v, %v", rt, err)
	}
	d := udpDatagram(local2, local2, 1, 2, []byte("self"))
	r.p.WritePacket(rt, wire.IPProtoUDP, proto.WriteParams{}, buf.FromBytes(d))
	if len(r.udp.got) != 1 || !bytes.Equal(r.udp.got[0], d) || r.udp.info[0].IfIndex != r.lo.index {
		t.Fatalf("looped packet not delivered: %d", len(r.udp.got))
	}
	// A link-local address of ours is local too, over the loopback.
	rt, err = r.p.Route(netip.MustParseAddr("fe80::1%eth0"), netip.Addr{}, 0)
	if err != nil || !rt.Local {
		t.Fatalf("Route = %+v, %v", rt, err)
	}
	d = udpDatagram(localLL, localLL, 1, 2, []byte("ll"))
	r.p.WritePacket(rt, wire.IPProtoUDP, proto.WriteParams{}, buf.FromBytes(d))
	if len(r.udp.got) != 2 {
		t.Fatalf("looped link-local packet not delivered")
	}
	if !r.p.LocalAddr(local) || !r.p.LocalAddr(netip.MustParseAddr("fe80::1%eth0")) || r.p.LocalAddr(peer) ||
		r.p.LocalAddr(netip.MustParseAddr("10.0.0.1")) {
		t.Errorf("LocalAddr wrong")
	}
}

func TestStatsAndTunables(t *testing.T) {
	r := newRig(t)
	for name, want := range map[string]string{
		"net.inet6.ip6.forwarding":        "0",
		"net.inet6.ip6.hlim":              "64",
		"net.inet6.ip6.reass_timeout":     "1m0s",
		"net.inet6.ip6.reass_maxmem":      "4194304",
		"net.inet6.ip6.max_ext_headers":   "8",
		"net.inet6.ip6.pmtu_expire":       "10m0s",
		"net.inet6.icmp6.ratelimit":       "1000",
		"net.inet6.icmp6.ratelimit_burst": "50",
		"net.inet6.icmp6.echo_multicast":  "1",
	} {
		if got, err := r.sys.Get(name); err != nil || got != want {
			t.Errorf("%s = %q, %v; want %q", name, got, err, want)
		}
	}
	r.sys.Set("net.inet6.ip6.hlim", "7")
	rt, _ := r.p.Route(peer, netip.Addr{}, 0)
	r.p.WritePacket(rt, wire.IPProtoUDP, proto.WriteParams{}, buf.FromBytes(udpDatagram(local, peer, 1, 2, nil)))
	if s := r.if1.take(); len(s) != 1 || wire.IPv6(s[0].b).HopLimit() != 7 {
		t.Errorf("hlim tunable not applied")
	}
	r.input(r.if1, []byte{0x60})
	seen := map[string]uint64{}
	r.p.VisitStats(stats.Visitor(func(n string, v uint64) { seen[n] = v }))
	for _, n := range []string{"ipv6.in.packets", "ipv6.out.packets", "ipv6.drop.truncated", "ipv6.reasm.pending", "icmp6.in.packets", "ipv6.in.ext_limit"} {
		if _, ok := seen[n]; !ok {
			t.Errorf("stat %s missing", n)
		}
	}
	for n := range seen {
		if !strings.HasPrefix(n, "ipv6.") && !strings.HasPrefix(n, "icmp6.") {
			t.Errorf("stat %s outside ipv6./icmp6.", n)
		}
	}
	if seen["ipv6.drop.truncated"] != 1 || seen["ipv6.out.packets"] != 1 {
		t.Errorf("stats %v", seen)
	}
}
