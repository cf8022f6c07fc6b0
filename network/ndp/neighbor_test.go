package ndp

import (
	"net/netip"
	"testing"
	"time"

	"ustack/buf"
	"ustack/network/neigh"
	"ustack/proto"
	"ustack/wire"
)

func TestSolicitationForUsIsAnswered(t *testing.T) {
	e := newUpEnv(t)
	e.in(peerLL, wire.SolicitedNodeMulticast(ourLL), 255, ns(ourLL, mac(peerMAC)))

	s := one(t, e.snd.take(), wire.ICMPv6NeighborAdvert)
	if s.Route.Src != ourLL || s.Route.Dst != peerLL || s.Route.NextHop != peerLL || s.TTL != 255 || s.Route.IfIndex != 1 {
		t.Errorf("NA sent %v -> %v via %v hop limit %d", s.Route.Src, s.Route.Dst, s.Route.NextHop, s.TTL)
	}
	m := s.icmp(t)
	a, err := wire.ParseNDPNeighborAdvert(m.Body())
	if err != nil {
		t.Fatal(err)
	}
	if !a.Solicited() || !a.Override() || a.Router() || a.Target() != ourLL {
		t.Errorf("NA S=%v O=%v R=%v target %v; want S O, not R, %v", a.Solicited(), a.Override(), a.Router(), a.Target(), ourLL)
	}
	if got, ok := linkAddrOption(a.Options(), wire.NDPOptTargetLLA); !ok || got != ourMAC {
		t.Errorf("TLLA %v %v, want %v", got, ok, ourMAC)
	}
	// RFC 4861 §7.2.3: the solicitation creates a Stale entry.
	if en, ok := e.entry(peerLL); !ok || en.State != neigh.Stale || en.MAC != peerMAC || en.IsRouter {
		t.Errorf("entry %+v %v, want Stale %v", en, ok, peerMAC)
	}
}

func TestSolicitationFromUnspecifiedForAssigned(t *testing.T) {
	e := newUpEnv(t)
	e.in(netip.IPv6Unspecified(), wire.SolicitedNodeMulticast(ourLL), 255, ns(ourLL, nil))
	s := one(t, e.snd.take(), wire.ICMPv6NeighborAdvert)
	a, _ := wire.ParseNDPNeighborAdvert(s.icmp(t).Body())
	if s.Route.Dst != allNodes || a.Solicited() || !a.Override() {
		t.Errorf("NA to %v S=%v O=%v; want to all-nodes, not solicited, override", s.Route.Dst, a.Solicited(), a.Override())
	}
	if e.cache.Len() != 0 {
		t.Errorf("a DAD probe made cache entries: %v", e.cache.Entries())
	}
}

func TestSolicitationRouterFlag(t *testing.T) {
	e := newUpEnv(t, func(c *Config) { c.Forwarding = func() bool { return true } })
	e.in(peerLL, ourLL, 255, ns(ourLL, mac(peerMAC)))
	a, _ := wire.ParseNDPNeighborAdvert(one(t, e.snd.take(), wire.ICMPv6NeighborAdvert).icmp(t).Body())
	if !a.Router() {
		t.Error("a forwarding stack's NA lacks the R flag")
	}
}

func TestSolicitationValidation(t *testing.T) {
	sn := wire.SolicitedNodeMulticast(ourLL)
	zeroLen := ns(ourLL, mac(peerMAC))
	zeroLen[25] = 0 // the option's length
	badCode := ns(ourLL, mac(peerMAC))
	badCode[1] = 1
	for _, tc := range []struct {
		name     string
		src, dst netip.Addr
		hl       uint8
		msg      []byte
		why      proto.DropReason
	}{
		{"hop limit 254", peerLL, sn, 254, ns(ourLL, mac(peerMAC)), proto.DropMalformed},
		{"hop limit 1", peerLL, sn, 1, ns(ourLL, mac(peerMAC)), proto.DropMalformed},
		{"code 1", peerLL, sn, 255, badCode, proto.DropMalformed},
		{"option length 0", peerLL, sn, 255, zeroLen, proto.DropBadOption},
		{"truncated", peerLL, sn, 255, ns(ourLL, nil)[:23], proto.DropTruncated},
		{"multicast target", peerLL, sn, 255, ns(allNodes, mac(peerMAC)), proto.DropMalformed},
		{"DAD with SLLA", netip.IPv6Unspecified(), sn, 255, ns(ourLL, mac(peerMAC)), proto.DropMalformed},
		{"DAD not to solicited-node", netip.IPv6Unspecified(), ourLL, 255, ns(ourLL, nil), proto.DropMalformed},
		{"not ours", peerLL, wire.SolicitedNodeMulticast(otherLL), 255, ns(otherLL, mac(peerMAC)), proto.DropNotForUs},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newUpEnv(t)
			e.in(tc.src, tc.dst, tc.hl, tc.msg)
			if out := e.snd.take(); len(out) != 0 {
				t.Errorf("sent %d packets", len(out))
			}
			if e.cache.Len() != 0 {
				t.Errorf("cache entries made: %v", e.cache.Entries())
			}
			if got := e.drops(tc.why); got != 1 {
				t.Errorf("drops for %v = %d, want 1 (total %d)", tc.why, got, e.p.Counters().TotalDrops())
			}
		})
	}
}

// TestAdvertisementResolves: a packet to an unknown neighbour makes the
// cache solicit through ND; the solicited NA resolves the entry and the
// queued packet goes out.
func TestAdvertisementResolves(t *testing.T) {
	e := newUpEnv(t)
	e.cache.Output(peerLL, wire.EtherTypeIPv6, buf.FromBytes([]byte("payload")))
	s := one(t, e.snd.take(), wire.ICMPv6NeighborSolicit)
	if s.Route.Src != ourLL || s.Route.Dst != wire.SolicitedNodeMulticast(peerLL) || s.TTL != 255 {
		t.Errorf("NS %v -> %v hop limit %d", s.Route.Src, s.Route.Dst, s.TTL)
	}
	q, _ := wire.ParseNDPNeighborSolicit(s.icmp(t).Body())
	if sl, ok := linkAddrOption(q.Options(), wire.NDPOptSourceLLA); q.Target() != peerLL || !ok || sl != ourMAC {
		t.Errorf("NS target %v SLLA %v %v", q.Target(), sl, ok)
	}
	if e.state(peerLL) != neigh.Incomplete {
		t.Fatalf("state %v, want Incomplete", e.state(peerLL))
	}

	e.in(peerLL, ourLL, 255, na(peerLL, false, true, true, mac(peerMAC)))
	if e.state(peerLL) != neigh.Reachable {
		t.Errorf("state %v, want Reachable", e.state(peerLL))
	}
	if len(e.sink.sent) != 1 || e.sink.sent[0] != peerMAC {
		t.Errorf("queued packets sent to %v, want one to %v", e.sink.sent, peerMAC)
	}
}

// TestProbeIsUnicast: NUD probes go to the neighbour itself.
func TestProbeIsUnicast(t *testing.T) {
	e := newUpEnv(t)
	e.p.Resolver(e.ifc).Solicit(peerLL, peerMAC)
	s := one(t, e.snd.take(), wire.ICMPv6NeighborSolicit)
	if s.Route.Dst != peerLL || s.Route.NextHop != peerLL {
		t.Errorf("probe to %v via %v, want %v", s.Route.Dst, s.Route.NextHop, peerLL)
	}
}

func TestResolverSource(t *testing.T) {
	e := newUpEnv(t)
	global := netip.MustParsePrefix("2001:db8:9::5/64")
	e.ifc.addAddr(global)
	e.p.Resolver(e.ifc).Solicit(netip.MustParseAddr("2001:db8:9::7"), wire.MAC{})
	if s := one(t, e.snd.take(), wire.ICMPv6NeighborSolicit); s.Route.Src != global.Addr() {
		t.Errorf("source %v, want %v", s.Route.Src, global.Addr())
	}
	e.p.Resolver(e.ifc).Solicit(peerLL, wire.MAC{})
	if s := one(t, e.snd.take(), wire.ICMPv6NeighborSolicit); s.Route.Src != ourLL {
		t.Errorf("source %v, want %v", s.Route.Src, ourLL)
	}
	// IPv4 targets are ARP's.
	e.p.Resolver(e.ifc).Solicit(netip.MustParseAddr("192.0.2.1"), wire.MAC{})
	if out := e.snd.take(); len(out) != 0 {
		t.Errorf("solicited an IPv4 target: %d packets", len(out))
	}
}

func TestResolverWithoutAddress(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.NoLinkLocal = true })
	e.p.Resolver(e.ifc).Solicit(peerLL, wire.MAC{})
	if out := e.snd.take(); len(out) != 0 {
		t.Errorf("sent %d packets with no source address", len(out))
	}
	if e.drops(proto.DropBadSource) != 1 {
		t.Errorf("bad_source drops %d, want 1", e.drops(proto.DropBadSource))
	}
}

func TestAdvertisementValidation(t *testing.T) {
	zeroLen := na(peerLL, false, true, true, mac(peerMAC))
	zeroLen[25] = 0
	for _, tc := range []struct {
		name string
		dst  netip.Addr
		hl   uint8
		msg  []byte
		why  proto.DropReason
	}{
		{"option length 0", ourLL, 255, zeroLen, proto.DropBadOption},
		{"hop limit 64", ourLL, 64, na(peerLL, false, true, true, mac(peerMAC)), proto.DropMalformed},
		{"solicited to multicast", allNodes, 255, na(peerLL, false, true, true, mac(peerMAC)), proto.DropMalformed},
		{"multicast target", ourLL, 255, na(allNodes, false, true, true, mac(peerMAC)), proto.DropMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newUpEnv(t)
			e.cache.Output(peerLL, wire.EtherTypeIPv6, buf.FromBytes([]byte("x")))
			e.snd.take()
			e.in(peerLL, tc.dst, tc.hl, tc.msg)
			if st := e.state(peerLL); st != neigh.Incomplete {
				t.Errorf("state %v, want Incomplete still", st)
			}
			if len(e.sink.sent) != 0 {
				t.Errorf("queued packet sent")
			}
			if got := e.drops(tc.why); got != 1 {
				t.Errorf("drops for %v = %d, want 1", tc.why, got)
			}
		})
	}
}

func TestAdvertisementRules(t *testing.T) {
	t.Run("no entry: discarded", func(t *testing.T) {
		e := newUpEnv(t)
		e.in(peerLL, allNodes, 255, na(peerLL, false, false, true, mac(peerMAC)))
		if e.cache.Len() != 0 {
			t.Errorf("entry made: %v", e.cache.Entries())
		}
	})
	t.Run("no override keeps address, Reachable to Stale", func(t *testing.T) {
		e := newUpEnv(t)
		e.cache.Output(peerLL, wire.EtherTypeIPv6, buf.FromBytes([]byte("x")))
		e.in(peerLL, ourLL, 255, na(peerLL, false, true, true, mac(peerMAC)))
		e.in(peerLL, ourLL, 255, na(peerLL, false, true, false, mac(otherMAC)))
		if en, _ := e.entry(peerLL); en.State != neigh.Stale || en.MAC != peerMAC {
			t.Errorf("entry %v %v, want Stale %v", en.State, en.MAC, peerMAC)
		}
	})
	t.Run("solicited without TLLA confirms", func(t *testing.T) {
		e := newUpEnv(t)
		e.in(peerLL, ourLL, 255, ns(ourLL, mac(peerMAC))) // Stale entry
		e.in(peerLL, ourLL, 255, na(peerLL, true, true, false, nil))
		if en, _ := e.entry(peerLL); en.State != neigh.Reachable || en.MAC != peerMAC || !en.IsRouter {
			t.Errorf("entry %+v, want Reachable router %v", en, peerMAC)
		}
		// An NS from it keeps IsRouter (RFC 4861 §7.2.3).
		e.in(peerLL, ourLL, 255, ns(ourLL, mac(otherMAC)))
		if en, _ := e.entry(peerLL); en.State != neigh.Stale || en.MAC != otherMAC || !en.IsRouter {
			t.Errorf("entry %+v, want Stale router %v", en, otherMAC)
		}
	})
	t.Run("NA for an assigned address is a conflict", func(t *testing.T) {
		e := newUpEnv(t)
		e.in(peerLL, allNodes, 255, na(ourLL, false, false, true, mac(peerMAC)))
		if e.p.st.conflicts.Load() != 1 || e.cache.Len() != 0 || !hasAddr(e.ifc, ourLL) {
			t.Errorf("conflicts %d, entries %d", e.p.st.conflicts.Load(), e.cache.Len())
		}
	})
}

// TestRouterFlagCleared: an NA without R from a default router takes it
// off the list (RFC 4861 §7.2.5).
func TestRouterFlagCleared(t *testing.T) {
	e := newUpEnv(t)
	e.in(routerLL, allNodes, 255, ra(raOpts{lifetime: 1800 * time.Second, slla: mac(peerMAC)}))
	if len(e.host.routes()) != 1 {
		t.Fatalf("routes %v", e.host.routes())
	}
	e.in(routerLL, ourLL, 255, na(routerLL, false, true, true, mac(peerMAC)))
	if rs := e.host.routes(); len(rs) != 0 {
		t.Errorf("routes %v after the router stopped being one", rs)
	}
	if en, _ := e.entry(routerLL); en.IsRouter {
		t.Errorf("entry still a router: %+v", en)
	}
}

func TestLoopedBackIgnored(t *testing.T) {
	e := newUpEnv(t)
	m := wire.ICMPv6(ns(ourLL, nil))
	m.UpdateChecksum(netip.IPv6Unspecified(), wire.SolicitedNodeMulticast(ourLL))
	pkt := buf.FromBytes(m)
	eth := make([]byte, wire.EthernetHeaderLen)
	(&wire.EthernetFields{Dst: wire.MulticastMACv6(wire.SolicitedNodeMulticast(ourLL).As16()), Src: ourMAC, Type: wire.EtherTypeIPv6}).Encode(eth)
	pkt.LinkHeader = eth
	e.p.HandleND(e.ifc, proto.PacketInfo{Src: netip.IPv6Unspecified(), Dst: wire.SolicitedNodeMulticast(ourLL), TTL: 255}, pkt)
	if out := e.snd.take(); len(out) != 0 || e.drops(proto.DropBadSource) != 1 {
		t.Errorf("our own frame answered (%d sent, %d dropped)", len(out), e.drops(proto.DropBadSource))
	}
}
