package ipv6

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"ustack/buf"
	"ustack/network/route"
	"ustack/proto"
	"ustack/wire"
)

func TestForwarding(t *testing.T) {
	dgram := udpDatagram(peer, far, 1, 2, pattern(100))
	pkt := func(hl uint8, src, dst netip.Addr, d []byte) []byte {
		return ipPacket(wire.IPv6Fields{HopLimit: hl, NextHeader: wire.IPProtoUDP, Src: src, Dst: dst}, d)
	}
	on := func(t *testing.T) *rig {
		r := newRig(t)
		r.sys.Set("net.inet6.ip6.forwarding", "1")
		return r
	}
	t.Run("off", func(t *testing.T) {
		r := newRig(t)
		r.input(r.if1, pkt(10, peer, far, dgram))
		if len(r.if2.take()) != 0 || r.p.counters.Dropped(proto.DropForwardingOff) != 1 {
			t.Errorf("forwarded with forwarding off")
		}
	})
	t.Run("on", func(t *testing.T) {
		r := on(t)
		r.input(r.if1, pkt(10, peer, far, dgram))
		sent := r.if2.take()
		if len(sent) != 1 || sent[0].next != far {
			t.Fatalf("not forwarded: %v", sent)
		}
		h, _ := wire.ParseIPv6(sent[0].b)
		if h.HopLimit() != 9 || h.Src() != peer || !bytes.Equal(h.Payload(), dgram) || r.p.forwarded.Load() != 1 {
			t.Errorf("forwarded hop limit %d", h.HopLimit())
		}
	})
	t.Run("via gateway", func(t *testing.T) {
		r := on(t)
		away := netip.MustParseAddr("2001:db8:99::1")
		r.input(r.if1, pkt(10, peer, away, udpDatagram(peer, away, 1, 2, nil)))
		if sent := r.if2.take(); len(sent) != 1 || sent[0].next != gateway {
			t.Errorf("not sent to the gateway: %v", sent)
		}
	})
	t.Run("hop limit exceeded", func(t *testing.T) {
		r := on(t)
		r.input(r.if1, pkt(1, peer, far, dgram))
		if len(r.if2.take()) != 0 {
			t.Fatalf("forwarded a hop limit 1 packet")
		}
		sent := r.if1.take()
		if len(sent) != 1 {
			t.Fatalf("no time exceeded")
		}
		h, m := sentICMP(t, sent[0])
		if m.Type() != wire.ICMPv6TimeExceeded || m.Code() != wire.ICMPv6HopLimitExceeded || h.Src() != local || h.Dst() != peer {
			t.Errorf("got %v/%d %v->%v", m.Type(), m.Code(), h.Src(), h.Dst())
		}
	})
	t.Run("packet too big, never fragmented", func(t *testing.T) {
		r := on(t)
		r.if2.mtu = 1280
		big := udpDatagram(peer, far, 1, 2, pattern(1400))
		r.input(r.if1, pkt(10, peer, far, big))
		if len(r.if2.take()) != 0 {
			t.Fatalf("forwarded over the MTU")
		}
		sent := r.if1.take()
		if len(sent) != 1 {
			t.Fatalf("no packet too big")
		}
		_, m := sentICMP(t, sent[0])
		if m.Type() != wire.ICMPv6PacketTooBig || m.MTU() != 1280 || len(sent[0].b) > wire.IPv6MinMTU {
			t.Errorf("got %v mtu %d, %d bytes", m.Type(), m.MTU(), len(sent[0].b))
		}
	})
	t.Run("link-local source", func(t *testing.T) {
		r := on(t)
		r.input(r.if1, pkt(10, peerLL, far, udpDatagram(peerLL, far, 1, 2, nil)))
		if len(r.if2.take()) != 0 {
			t.Fatalf("forwarded a link-local source")
		}
		sent := r.if1.take()
		if len(sent) != 1 {
			t.Fatalf("no beyond-scope error")
		}
		if h, m := sentICMP(t, sent[0]); m.Type() != wire.ICMPv6DstUnreachable || m.Code() != wire.ICMPv6BeyondScope || h.Src() != localLL {
			t.Errorf("got %v/%d from %v", m.Type(), m.Code(), h.Src())
		}
	})
	t.Run("link-local destination", func(t *testing.T) {
		r := on(t)
		ll := netip.MustParseAddr("fe80::42")
		r.input(r.if1, pkt(10, peer, ll, udpDatagram(peer, ll, 1, 2, nil)))
		if len(r.if2.take())+len(r.if1.take()) != 0 || r.p.counters.Dropped(proto.DropNotForUs) != 1 {
			t.Errorf("link-local destination forwarded or answered")
		}
	})
	t.Run("unspecified source", func(t *testing.T) {
		r := on(t)
		r.input(r.if1, pkt(10, netip.IPv6Unspecified(), far, udpDatagram(netip.IPv6Unspecified(), far, 1, 2, nil)))
		if len(r.if2.take()) != 0 || r.p.counters.Dropped(proto.DropBadSource) != 1 {
			t.Errorf("unspecified source forwarded")
		}
	})
	t.Run("no route", func(t *testing.T) {
		r := on(t)
		r.p.routes.Delete(route.Route{Dst: netip.MustParsePrefix("::/0"), Gateway: gateway, IfIndex: 2})
		away := netip.MustParseAddr("2001:db8:99::1")
		r.input(r.if1, pkt(10, peer, away, udpDatagram(peer, away, 1, 2, nil)))
		sent := r.if1.take()
		if len(sent) != 1 {
			t.Fatalf("no destination unreachable")
		}
		if _, m := sentICMP(t, sent[0]); m.Type() != wire.ICMPv6DstUnreachable || m.Code() != wire.ICMPv6NoRoute {
			t.Errorf("got %v/%d", m.Type(), m.Code())
		}
	})
	t.Run("link multicast frame", func(t *testing.T) {
		r := on(t)
		p := buf.FromBytes(pkt(10, peer, far, dgram))
		p.Flags |= buf.FlagLinkMulticast
		r.p.HandlePacket(r.if1, p)
		if len(r.if2.take()) != 0 || r.p.counters.Dropped(proto.DropNotForUs) != 1 {
			t.Errorf("forwarded from a link multicast frame")
		}
	})
}

func TestPathMTU(t *testing.T) {
	router := netip.MustParseAddr("2001:db8:2::fe")
	away := netip.MustParseAddr("2001:db8:99::1")
	// We sent a 1500-byte packet to away; a router says too big.
	tooBig := func(r *rig, mtu uint32) {
		udp := udpDatagram(local2, away, 5000, 53, pattern(1400))
		orig := ipPacket(wire.IPv6Fields{NextHeader: wire.IPProtoUDP, Src: local2, Dst: away}, udp)
		body := orig[:wire.ICMPv6ErrorQuoteLen]
		r.input(r.if2, ipPacket(wire.IPv6Fields{NextHeader: wire.IPProtoICMPv6, Src: router, Dst: local2},
			icmpMessage(router, local2, wire.ICMPv6Fields{Type: wire.ICMPv6PacketTooBig, Rest: mtu}, body)))
	}
	routeMTU := func(r *rig) int {
		rt, err := r.p.Route(away, netip.Addr{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		return rt.MTU
	}
	r := newRig(t)
	if m := routeMTU(r); m != 1500 {
		t.Fatalf("MTU %d before packet too big", m)
	}
	tooBig(r, 1400)
	if m := routeMTU(r); m != 1400 {
		t.Errorf("MTU %d after packet too big 1400", m)
	}
	if len(r.udp.errs) != 1 || r.udp.errs[0].Kind != proto.ErrFragNeeded || r.udp.errs[0].MTU != 1400 {
		t.Errorf("transport not told: %+v", r.udp.errs)
	}
	// Never raised by packet too big.
	tooBig(r, 1450)
	if m := routeMTU(r); m != 1400 {
		t.Errorf("MTU raised to %d", m)
	}
	// Never below 1280.
	tooBig(r, 600)
	if m := routeMTU(r); m != wire.IPv6MinMTU {
		t.Errorf("MTU %d after packet too big 600, want 1280", m)
	}
	if e := r.udp.errs[len(r.udp.errs)-1]; e.MTU != wire.IPv6MinMTU {
		t.Errorf("transport told MTU %d, want 1280", e.MTU)
	}
	// Other destinations keep the interface MTU.
	if rt, _ := r.p.Route(far, netip.Addr{}, 0); rt.MTU != 1500 {
		t.Errorf("another destination's MTU is %d", rt.MTU)
	}
	// Sending now fragments at 1280.
	rt, _ := r.p.Route(away, netip.Addr{}, 0)
	r.if2.take()
	r.p.WritePacket(rt, wire.IPProtoUDP, proto.WriteParams{}, buf.FromBytes(udpDatagram(local2, away, 1, 2, pattern(1400))))
	for _, s := range r.if2.take() {
		if len(s.b) > wire.IPv6MinMTU {
			t.Errorf("sent %d bytes over the path MTU", len(s.b))
		}
	}
	// It expires after 10 minutes (RFC 8201 §4).
	r.clk.Advance(DefaultPMTUExpire - time.Second)
	if m := routeMTU(r); m != wire.IPv6MinMTU {
		t.Errorf("expired early: %d", m)
	}
	r.clk.Advance(2 * time.Second)
	if m := routeMTU(r); m != 1500 {
		t.Errorf("MTU %d after expiry, want 1500", m)
	}
	if _, ok := r.p.PathMTU(away); ok {
		t.Errorf("PathMTU still reports an entry")
	}
	// Once expired, a larger report is taken.
	tooBig(r, 1450)
	if m := routeMTU(r); m != 1450 {
		t.Errorf("MTU %d after a new packet too big 1450", m)
	}
}

func TestPMTUCacheBound(t *testing.T) {
	var c pmtuCache
	now := time.Unix(0, 0)
	for i := 0; i < maxPMTUEntries+100; i++ {
		a := netip.AddrFrom16([16]byte{0: 0x20, 1: 0x01, 14: byte(i >> 8), 15: byte(i)})
		c.update(a, 1300, now.Add(time.Duration(i)), time.Minute)
	}
	if c.len() > maxPMTUEntries {
		t.Errorf("%d entries over the bound", c.len())
	}
}
