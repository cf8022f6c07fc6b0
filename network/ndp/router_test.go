package ndp

import (
	"net/netip"
	"testing"
	"time"

	"ustack/network/neigh"
	"ustack/network/route"
	"ustack/proto"
	"ustack/wire"
)

type raOpts struct {
	lifetime        time.Duration
	hopLimit        uint8
	reachable, retr time.Duration
	slla            *wire.MAC
	mtu             uint32
	prefixes        []wire.NDPPrefixInfo
}

func ra(o raOpts) []byte {
	return enc(&wire.NDPRouterAdvertFields{
		CurHopLimit:    o.hopLimit,
		RouterLifetime: o.lifetime,
		ReachableTime:  o.reachable,
		RetransTimer:   o.retr,
		SourceLLA:      o.slla,
		MTU:            o.mtu,
		Prefixes:       o.prefixes,
	})
}

func pinfo(p netip.Prefix, onLink, auto bool, valid, preferred time.Duration) wire.NDPPrefixInfo {
	return wire.NDPPrefixInfo{Prefix: p, OnLink: onLink, Autonomous: auto, ValidLifetime: valid, PreferredLifetime: preferred}
}

var defaultRoute = route.Route{
	Dst: netip.MustParsePrefix("::/0"), Gateway: routerLL, IfIndex: 1, Metric: RouteMetric, Origin: route.OriginRA,
}

var prefixRoute = route.Route{Dst: prefix1, IfIndex: 1, Metric: RouteMetric, Origin: route.OriginRA}

// TestAttach: the link-local address goes through DAD (MLD report, then
// NS from ::), is assigned, and routers are solicited up to 3 times.
func TestAttach(t *testing.T) {
	e := newEnv(t)
	if out := e.snd.take(); len(out) != 0 {
		t.Fatalf("sent %d packets before the initial delay", len(out))
	}
	e.clk.Advance(MaxRtrSolicitationDelay)
	out := e.snd.take()
	if len(out) != 2 {
		t.Fatalf("sent %d packets, want an MLD report then a DAD NS", len(out))
	}
	sn := wire.SolicitedNodeMulticast(ourLL)
	rep := out[0]
	if rep.icmp(t).Type() != wire.ICMPv6MLDv2Report || rep.Proto != wire.IPProtoHopByHop || rep.TTL != 1 ||
		rep.Route.Dst != wire.IPv6AllMLDv2Routers() || !rep.Route.Src.IsUnspecified() {
		t.Errorf("first packet %v %v ttl %d %v -> %v; want MLDv2 report with router alert, hop limit 1, :: -> ff02::16",
			rep.icmp(t).Type(), rep.Proto, rep.TTL, rep.Route.Src, rep.Route.Dst)
	}
	r, _ := wire.ParseMLDv2Report(rep.icmp(t).Body())
	it := r.Records()
	if rec, ok := it.Next(); !ok || rec.Type() != wire.MLDv2ChangeToExclude || rec.Multicast() != sn {
		t.Errorf("report record %v", rec)
	}
	dad := out[1]
	q, _ := wire.ParseNDPNeighborSolicit(dad.icmp(t).Body())
	if dad.icmp(t).Type() != wire.ICMPv6NeighborSolicit || !dad.Route.Src.IsUnspecified() || dad.Route.Dst != sn ||
		q.Target() != ourLL || len(q.Options()) != 0 || dad.TTL != 255 {
		t.Errorf("DAD NS %v -> %v target %v options % x", dad.Route.Src, dad.Route.Dst, q.Target(), q.Options())
	}
	if log := e.host.takeLog(); !hasLog(log, "join "+sn.String()) || hasAddr(e.ifc, ourLL) {
		t.Errorf("host log %v; want the group joined, no address yet", log)
	}
	if got := e.p.Addresses(1); len(got) != 1 || !got[0].Tentative || got[0].Origin != OriginLinkLocal {
		t.Errorf("addresses %+v", got)
	}

	e.clk.Advance(time.Second) // RetransTimer
	if log := e.host.takeLog(); !hasLog(log, "add "+netip.PrefixFrom(ourLL, 64).String()+" route=true") {
		t.Errorf("host log %v; want the link-local address added with its route", log)
	}
	out = e.snd.take()
	rs := one(t, out, wire.ICMPv6RouterSolicit)
	if rs.Route.Src != ourLL || rs.Route.Dst != wire.IPv6AllRouters() || rs.TTL != 255 {
		t.Errorf("RS %v -> %v hop limit %d", rs.Route.Src, rs.Route.Dst, rs.TTL)
	}
	b, _ := wire.ParseNDPRouterSolicit(rs.icmp(t).Body())
	if sl, ok := linkAddrOption(b.Options(), wire.NDPOptSourceLLA); !ok || sl != ourMAC {
		t.Errorf("RS SLLA %v %v", sl, ok)
	}
	// The report's retransmission is due too; more RS follow, 3 in all.
	e.clk.Advance(time.Minute)
	if n := len(filter(t, e.snd.take(), wire.ICMPv6RouterSolicit)); n != MaxRtrSolicitations-1 {
		t.Errorf("%d more RS, want %d", n, MaxRtrSolicitations-1)
	}
}

func TestNoSolicitationWhenForwarding(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Forwarding = func() bool { return true } })
	e.clk.Advance(time.Minute)
	if n := len(filter(t, e.snd.take(), wire.ICMPv6RouterSolicit)); n != 0 {
		t.Errorf("a router sent %d RS", n)
	}
	e.in(routerLL, allNodes, 255, ra(raOpts{lifetime: 1800 * time.Second}))
	if rs := e.host.routes(); len(rs) != 0 {
		t.Errorf("a router took routes from an RA: %v", rs)
	}
}

// TestRouterAdvertisement: default router, on-link prefix, MTU, hop
// limit, timers, and an address by SLAAC after DAD.
func TestRouterAdvertisement(t *testing.T) {
	e := newEnv(t)
	e.clk.Advance(MaxRtrSolicitationDelay + time.Second) // link-local assigned, first RS out
	e.snd.take()
	e.host.takeLog()

	e.in(routerLL, allNodes, 255, ra(raOpts{
		lifetime: 1800 * time.Second, hopLimit: 57, reachable: 10 * time.Second, retr: 2 * time.Second,
		slla: mac(peerMAC), mtu: 1400,
		prefixes: []wire.NDPPrefixInfo{pinfo(prefix1, true, true, time.Hour, 30*time.Minute)},
	}))
	log := e.host.takeLog()
	for _, want := range []string{
		"route add " + defaultRoute.String(),
		"route add " + prefixRoute.String(),
		"mtu 1400", "hoplimit 57",
	} {
		if !hasLog(log, want) {
			t.Errorf("host log %q lacks %q", log, want)
		}
	}
	if en, ok := e.entry(routerLL); !ok || en.State != neigh.Stale || en.MAC != peerMAC || !en.IsRouter {
		t.Errorf("router entry %+v", en)
	}
	if n := e.groupOwn(wire.SolicitedNodeMulticast(ourSLAAC)); n != 2 {
		t.Errorf("solicited-node group held %d times, want 2 (link-local and SLAAC)", n)
	}
	if rt := e.cache.ReachableTime(); rt < 5*time.Second || rt >= 15*time.Second {
		t.Errorf("ReachableTime %v, want within [5s, 15s)", rt)
	}
	now := e.clk.Now()
	if rs := e.p.Routers(1); len(rs) != 1 || rs[0].Addr != routerLL || rs[0].Expires != now.Add(1800*time.Second) {
		t.Errorf("routers %+v", rs)
	}
	if ps := e.p.Prefixes(1); len(ps) != 1 || ps[0].Prefix != prefix1 || ps[0].Expires != now.Add(time.Hour) {
		t.Errorf("prefixes %+v", ps)
	}
	// DAD for the SLAAC address, RetransTimer (now 2s) long.
	out := e.snd.take()
	dad := one(t, out, wire.ICMPv6NeighborSolicit)
	if q, _ := wire.ParseNDPNeighborSolicit(dad.icmp(t).Body()); q.Target() != ourSLAAC || !dad.Route.Src.IsUnspecified() {
		t.Errorf("DAD for %v from %v", q.Target(), dad.Route.Src)
	}
	e.clk.Advance(time.Second)
	if hasAddr(e.ifc, ourSLAAC) {
		t.Fatal("assigned before RetransTimer passed")
	}
	e.clk.Advance(time.Second)
	if log := e.host.takeLog(); !hasLog(log, "add "+netip.PrefixFrom(ourSLAAC, 64).String()+" route=false") {
		t.Errorf("host log %q; want the SLAAC address added without a prefix route", log)
	}
	// Solicitation stopped with the advertisement.
	e.clk.Advance(time.Minute)
	if n := len(filter(t, e.snd.take(), wire.ICMPv6RouterSolicit)); n != 0 {
		t.Errorf("%d RS after an RA", n)
	}
	if ai := e.addrInfo(ourSLAAC); ai.Tentative || ai.Deprecated || ai.Origin != OriginSLAAC ||
		ai.ValidUntil != e.clk.Now().Add(time.Hour-time.Minute-2*time.Second) {
		t.Errorf("address %+v", ai)
	}
}

func TestRouterAdvertisementValidation(t *testing.T) {
	good := raOpts{lifetime: 1800 * time.Second, slla: mac(peerMAC), prefixes: []wire.NDPPrefixInfo{pinfo(prefix1, true, true, time.Hour, time.Hour)}}
	zeroLen := ra(good)
	zeroLen[16+1] = 0 // the SLLA option's length
	badCode := ra(good)
	badCode[1] = 3
	for _, tc := range []struct {
		name string
		src  netip.Addr
		hl   uint8
		msg  []byte
		why  proto.DropReason
	}{
		{"global source", netip.MustParseAddr("2001:db8::1"), 255, ra(good), proto.DropBadSource},
		{"unspecified source", netip.IPv6Unspecified(), 255, ra(good), proto.DropBadSource},
		{"hop limit 254", routerLL, 254, ra(good), proto.DropMalformed},
		{"code 3", routerLL, 255, badCode, proto.DropMalformed},
		{"option length 0", routerLL, 255, zeroLen, proto.DropBadOption},
		{"truncated", routerLL, 255, ra(raOpts{})[:15], proto.DropTruncated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newUpEnv(t)
			e.in(tc.src, allNodes, tc.hl, tc.msg)
			if log := e.host.takeLog(); len(log) != 0 {
				t.Errorf("host asked %q", log)
			}
			if e.cache.Len() != 0 || len(e.snd.take()) != 0 {
				t.Errorf("cache %v", e.cache.Entries())
			}
			if got := e.drops(tc.why); got != 1 {
				t.Errorf("drops for %v = %d, want 1", tc.why, got)
			}
		})
	}
}

// TestPrefixOver128Ignored: the option is dropped and counted, the rest of
// the RA applies.
func TestPrefixOver128Ignored(t *testing.T) {
	e := newUpEnv(t)
	msg := ra(raOpts{lifetime: 1800 * time.Second, prefixes: []wire.NDPPrefixInfo{pinfo(prefix1, true, true, time.Hour, time.Hour)}})
	msg[16+2] = 129 // prefix length
	e.in(routerLL, allNodes, 255, msg)
	if rs := e.host.routes(); len(rs) != 1 || rs[0] != defaultRoute {
		t.Errorf("routes %v, want only the default route", rs)
	}
	if len(filter(t, e.snd.take(), wire.ICMPv6NeighborSolicit)) != 0 {
		t.Error("an address was formed from a prefix longer than 128")
	}
	if got := e.drops(proto.DropBadOption); got != 1 {
		t.Errorf("bad_option drops = %d, want 1 for the prefix option", got)
	}
}

func TestIgnoredPrefixes(t *testing.T) {
	e := newUpEnv(t)
	e.in(routerLL, allNodes, 255, ra(raOpts{prefixes: []wire.NDPPrefixInfo{
		pinfo(netip.MustParsePrefix("fe80::/64"), true, true, time.Hour, time.Hour),              // link-local
		pinfo(netip.MustParsePrefix("2001:db8:2::/64"), false, true, time.Hour, 2*time.Hour),     // preferred > valid
		pinfo(netip.MustParsePrefix("2001:db8:3::/48"), false, true, time.Hour, time.Hour),       // not /64
		pinfo(netip.MustParsePrefix("2001:db8:4::/64"), true, false, 0, 0),                       // valid 0, unknown
		pinfo(netip.MustParsePrefix("2001:db8:5::/64"), false, false, time.Hour, 30*time.Minute), // no flags
	}}))
	if log := e.host.takeLog(); len(log) != 0 {
		t.Errorf("host asked %q", log)
	}
	if out := e.snd.take(); len(out) != 0 {
		t.Errorf("sent %d packets", len(out))
	}
}

// TestLifetimes: routers, prefixes and addresses expire on the clock;
// the preferred lifetime deprecates first.
func TestLifetimes(t *testing.T) {
	e := newUpEnv(t)
	e.in(routerLL, allNodes, 255, ra(raOpts{
		lifetime: 300 * time.Second,
		prefixes: []wire.NDPPrefixInfo{pinfo(prefix1, true, true, 600*time.Second, 100*time.Second)},
	}))
	e.clk.Advance(time.Second) // DAD
	if !hasAddr(e.ifc, ourSLAAC) {
		t.Fatal("no SLAAC address")
	}
	e.host.takeLog()
	e.clk.Advance(99 * time.Second) // 100s after the RA
	if log := e.host.takeLog(); !hasLog(log, "deprecated "+ourSLAAC.String()+" true") {
		t.Errorf("host log %q; want the address deprecated", log)
	}
	e.clk.Advance(200 * time.Second) // 300s
	if log := e.host.takeLog(); !hasLog(log, "route del "+defaultRoute.String()) {
		t.Errorf("host log %q; want the default route gone", log)
	}
	if rs := e.host.routes(); len(rs) != 1 || rs[0] != prefixRoute {
		t.Errorf("routes %v", rs)
	}
	e.clk.Advance(300 * time.Second) // 600s
	log := e.host.takeLog()
	if !hasLog(log, "remove "+ourSLAAC.String()) || !hasLog(log, "route del "+prefixRoute.String()) {
		t.Errorf("host log %q; want the address and the prefix route gone", log)
	}
	if n := e.groupOwn(wire.SolicitedNodeMulticast(ourSLAAC)); n != 1 {
		t.Errorf("solicited-node group held %d times, want 1 (link-local)", n)
	}
	if hasAddr(e.ifc, ourSLAAC) || len(e.host.routes()) != 0 || len(e.p.Addresses(1)) != 1 {
		t.Errorf("left: routes %v, addresses %v", e.host.routes(), e.p.Addresses(1))
	}
}

func TestRouterLifetimeZeroRemoves(t *testing.T) {
	e := newUpEnv(t)
	e.in(routerLL, allNodes, 255, ra(raOpts{lifetime: 1800 * time.Second, prefixes: []wire.NDPPrefixInfo{pinfo(prefix1, true, false, time.Hour, time.Hour)}}))
	if len(e.host.routes()) != 2 {
		t.Fatalf("routes %v", e.host.routes())
	}
	e.in(routerLL, allNodes, 255, ra(raOpts{lifetime: 0, prefixes: []wire.NDPPrefixInfo{pinfo(prefix1, true, false, 0, 0)}}))
	if rs := e.host.routes(); len(rs) != 0 {
		t.Errorf("routes %v, want none", rs)
	}
}

// TestTwoHourRule: RFC 4862 §5.5.3 (e).
func TestTwoHourRule(t *testing.T) {
	e := newUpEnv(t)
	adv := func(valid time.Duration) {
		e.in(routerLL, allNodes, 255, ra(raOpts{prefixes: []wire.NDPPrefixInfo{pinfo(prefix1, false, true, valid, valid/2)}}))
	}
	validFor := func() time.Duration {
		for _, a := range e.p.Addresses(1) {
			if a.Prefix.Addr() == ourSLAAC {
				return a.ValidUntil.Sub(e.clk.Now())
			}
		}
		t.Fatal("no SLAAC address")
		return 0
	}
	adv(5 * time.Hour)
	e.clk.Advance(time.Second)
	adv(10 * time.Minute) // remaining 5h: cut to 2h, not 10 minutes
	if got := validFor(); got != twoHours {
		t.Errorf("valid for %v, want 2h", got)
	}
	adv(3 * time.Hour) // longer than 2h: taken
	if got := validFor(); got != 3*time.Hour {
		t.Errorf("valid for %v, want 3h", got)
	}
	e.clk.Advance(2 * time.Hour) // remaining 1h
	adv(time.Minute)             // remaining <= 2h: ignored
	if got := validFor(); got != time.Hour {
		t.Errorf("valid for %v, want 1h", got)
	}
	adv(90 * time.Minute) // more than remaining: taken
	if got := validFor(); got != 90*time.Minute {
		t.Errorf("valid for %v, want 90m", got)
	}
}

// TestRedirect: accepted only from the current first hop (RFC 4861 §8.1).
func TestRedirect(t *testing.T) {
	dst := netip.MustParseAddr("2001:db8:77::1")
	better := netip.MustParseAddr("fe80::99")
	redir := func(target, dst netip.Addr, tlla *wire.MAC) []byte {
		return enc(&wire.NDPRedirectFields{Target: target, Dst: dst, TargetLLA: tlla})
	}
	setup := func(t *testing.T) *env {
		e := newUpEnv(t)
		e.snd.route = func(d netip.Addr) (proto.Route, error) {
			return proto.Route{Dst: d, NextHop: routerLL, IfIndex: 1}, nil
		}
		return e
	}
	t.Run("to a better router", func(t *testing.T) {
		e := setup(t)
		e.in(routerLL, ourLL, 255, redir(better, dst, mac(otherMAC)))
		want := route.Route{Dst: netip.PrefixFrom(dst, 128), Gateway: better, IfIndex: 1, Origin: route.OriginRedirect}
		if rs := e.host.routes(); len(rs) != 1 || rs[0] != want {
			t.Errorf("routes %v, want %v", rs, want)
		}
		if en, ok := e.entry(better); !ok || en.State != neigh.Stale || en.MAC != otherMAC || !en.IsRouter {
			t.Errorf("target entry %+v", en)
		}
		e.clk.Advance(RedirectLifetime)
		if rs := e.host.routes(); len(rs) != 0 {
			t.Errorf("routes %v after RedirectLifetime", rs)
		}
	})
	t.Run("destination on-link", func(t *testing.T) {
		e := setup(t)
		e.in(routerLL, ourLL, 255, redir(dst, dst, nil))
		want := route.Route{Dst: netip.PrefixFrom(dst, 128), IfIndex: 1, Origin: route.OriginRedirect}
		if rs := e.host.routes(); len(rs) != 1 || rs[0] != want {
			t.Errorf("routes %v, want %v", rs, want)
		}
	})
	t.Run("replaced", func(t *testing.T) {
		e := setup(t)
		e.in(routerLL, ourLL, 255, redir(better, dst, nil))
		e.in(routerLL, ourLL, 255, redir(dst, dst, nil))
		if rs := e.host.routes(); len(rs) != 1 || rs[0].Gateway.IsValid() {
			t.Errorf("routes %v, want only the on-link one", rs)
		}
	})
	for _, tc := range []struct {
		name   string
		src    netip.Addr
		hl     uint8
		target netip.Addr
		why    proto.DropReason
	}{
		{"not from the first hop", otherLL, 255, better, proto.DropBadSource},
		{"hop limit 254", routerLL, 254, better, proto.DropMalformed},
		{"global source", netip.MustParseAddr("2001:db8::1"), 255, better, proto.DropBadSource},
		{"global target", routerLL, 255, netip.MustParseAddr("2001:db8::9"), proto.DropMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t)
			e.in(tc.src, ourLL, tc.hl, redir(tc.target, dst, mac(otherMAC)))
			if rs := e.host.routes(); len(rs) != 0 {
				t.Errorf("routes %v", rs)
			}
			if e.cache.Len() != 0 {
				t.Errorf("cache %v", e.cache.Entries())
			}
			if got := e.drops(tc.why); got != 1 {
				t.Errorf("drops for %v = %d, want 1", tc.why, got)
			}
		})
	}
	t.Run("no route", func(t *testing.T) {
		e := newUpEnv(t)
		e.in(routerLL, ourLL, 255, redir(better, dst, nil))
		if rs := e.host.routes(); len(rs) != 0 || e.p.st.redirectsBad.Load() != 1 {
			t.Errorf("routes %v", rs)
		}
	})
}

func TestDetachStopsTimers(t *testing.T) {
	e := newEnv(t)
	e.p.Detach(1)
	e.clk.Advance(time.Hour)
	if out := e.snd.take(); len(out) != 0 {
		t.Errorf("sent %d packets after Detach", len(out))
	}
	e.in(peerLL, wire.SolicitedNodeMulticast(ourLL), 255, ns(ourLL, mac(peerMAC)))
	if e.drops(proto.DropInterfaceDown) != 1 {
		t.Errorf("a message on a detached interface was not dropped")
	}
}
