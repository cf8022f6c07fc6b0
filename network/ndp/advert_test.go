package ndp

import (
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ustack/buf"
	"ustack/proto"
	"ustack/wire"
)

// routerEnv is an up interface of a forwarding stack, advertising cfg.
func routerEnv(t *testing.T, cfg AdvertConfig) (*env, *atomic.Bool) {
	t.Helper()
	fwd := &atomic.Bool{}
	fwd.Store(true)
	e := newUpEnv(t, func(c *Config) { c.Forwarding = fwd.Load })
	if err := e.p.Advertise(1, cfg); err != nil {
		t.Fatal(err)
	}
	return e, fwd
}

var advCfg = AdvertConfig{
	MaxInterval: 60 * time.Second, // MinInterval 20 s
	CurHopLimit: 64,
	MTU:         1400,
	Prefixes:    []wire.NDPPrefixInfo{pinfo(prefix1, true, true, time.Hour, 30*time.Minute)},
}

// checkRA checks an advertisement against RFC 4861 §6.2.8 and advCfg and
// returns its router lifetime.
func checkRA(t *testing.T, s sent) time.Duration {
	t.Helper()
	m := s.icmp(t)
	if m.Type() != wire.ICMPv6RouterAdvert || s.TTL != 255 || s.Route.Src != ourLL || s.Route.Dst != allNodes || s.Proto != wire.IPProtoICMPv6 {
		t.Fatalf("RA %v ttl %d %v -> %v", m.Type(), s.TTL, s.Route.Src, s.Route.Dst)
	}
	ra, err := wire.ParseNDPRouterAdvert(m.Body())
	if err != nil {
		t.Fatal(err)
	}
	if ra.CurHopLimit() != 64 {
		t.Errorf("cur hop limit %d", ra.CurHopLimit())
	}
	var slla bool
	var pis []wire.NDPPrefixInfo
	var mtu uint32
	it := wire.NewNDPOptIter(ra.Options())
	for o, ok := it.Next(); ok; o, ok = it.Next() {
		switch o.Type {
		case wire.NDPOptSourceLLA:
			m, _ := o.LinkAddr()
			slla = m == ourMAC
		case wire.NDPOptPrefixInfo:
			pi, _ := o.PrefixInfo()
			pis = append(pis, pi)
		case wire.NDPOptMTU:
			mtu, _ = o.MTU()
		}
	}
	if !slla || mtu != 1400 || len(pis) != 1 || pis[0] != advCfg.Prefixes[0] {
		t.Errorf("options: slla %v mtu %d prefixes %+v", slla, mtu, pis)
	}
	return ra.RouterLifetime()
}

// TestAdvertiseUnsolicited: the first RAs come at most 16 s apart
// (§6.2.4), then every MinInterval..MaxInterval; the lifetime defaults to
// 3 MaxInterval; all-routers is joined.
func TestAdvertiseUnsolicited(t *testing.T) {
	e, fwd := routerEnv(t, advCfg)
	if e.groupOwn(wire.IPv6AllRouters()) != 1 {
		t.Errorf("all-routers not joined")
	}
	var times []time.Time
	for range 400 {
		e.clk.Advance(time.Second)
		for _, s := range filter(t, e.snd.take(), wire.ICMPv6RouterAdvert) {
			if lt := checkRA(t, s); lt != 180*time.Second {
				t.Errorf("router lifetime %v", lt)
			}
			times = append(times, e.clk.Now())
		}
	}
	if len(times) < 8 {
		t.Fatalf("%d RAs in 400 s", len(times))
	}
	if d := times[0].Sub(t0); d > MaxRtrSolicitationDelay+time.Second+MaxRtrSolicitations*RtrSolicitationInterval+MaxInitialRtrAdvertInterval+time.Second {
		t.Errorf("first RA after %v", d)
	}
	for i := 1; i < len(times); i++ {
		d := times[i].Sub(times[i-1])
		maxD := advCfg.MaxInterval + time.Second
		if i < MaxInitialRtrAdvertisements {
			maxD = MaxInitialRtrAdvertInterval + time.Second
		}
		if d > maxD || i >= MaxInitialRtrAdvertisements && d < 20*time.Second {
			t.Errorf("RA %d after %v", i, d)
		}
	}
	// Not forwarding: silent.
	fwd.Store(false)
	e.clk.Advance(5 * time.Minute)
	if n := len(filter(t, e.snd.take(), wire.ICMPv6RouterAdvert)); n != 0 {
		t.Errorf("%d RAs while not forwarding", n)
	}
}

// TestAdvertiseSolicited: an RS is answered within MaxRADelayTime, but
// not sooner than MinDelayBetweenRAs after the last RA (§6.2.6); its
// SLLA makes a Stale neighbour entry.
func TestAdvertiseSolicited(t *testing.T) {
	e, _ := routerEnv(t, advCfg)
	// Let the first RA go.
	for len(filter(t, e.snd.take(), wire.ICMPv6RouterAdvert)) == 0 {
		e.clk.Advance(100 * time.Millisecond)
	}
	e.clk.Advance(10 * time.Second)
	e.snd.take()
	host := netip.MustParseAddr("fe80::99")
	rs := enc(&wire.NDPRouterSolicitFields{SourceLLA: mac(peerMAC)})
	e.in(host, wire.IPv6AllRouters(), 255, rs)
	if en, ok := e.entry(host); !ok || en.MAC != peerMAC || en.IsRouter {
		t.Errorf("entry for the soliciting host %+v %v", en, ok)
	}
	start := e.clk.Now()
	var at time.Time
	for range 10 {
		e.clk.Advance(50 * time.Millisecond)
		if len(filter(t, e.snd.take(), wire.ICMPv6RouterAdvert)) > 0 {
			at = e.clk.Now()
			break
		}
	}
	if at.IsZero() || at.Sub(start) > MaxRADelayTime {
		t.Fatalf("solicited RA after %v", at.Sub(start))
	}
	// A second RS right away waits for MinDelayBetweenRAs.
	e.in(host, wire.IPv6AllRouters(), 255, rs)
	e.clk.Advance(MinDelayBetweenRAs - 100*time.Millisecond)
	if n := len(filter(t, e.snd.take(), wire.ICMPv6RouterAdvert)); n != 0 {
		t.Errorf("%d RAs within MinDelayBetweenRAs", n)
	}
	e.clk.Advance(MaxRADelayTime + 200*time.Millisecond)
	if n := len(filter(t, e.snd.take(), wire.ICMPv6RouterAdvert)); n != 1 {
		t.Errorf("%d rate-limited RAs, want 1", n)
	}
	// Invalid solicitations are dropped: hop limit, SLLA from ::.
	e.in(host, wire.IPv6AllRouters(), 64, rs)
	e.in(netip.IPv6Unspecified(), wire.IPv6AllRouters(), 255, rs)
	e.clk.Advance(time.Second)
	if n := len(filter(t, e.snd.take(), wire.ICMPv6RouterAdvert)); n != 0 {
		t.Errorf("%d RAs for invalid solicitations", n)
	}
}

// TestAdvertiseStop: stopping sends a final RA with router lifetime 0
// (§6.2.5) and leaves all-routers; a host discards RSs.
func TestAdvertiseStop(t *testing.T) {
	e, _ := routerEnv(t, advCfg)
	e.clk.Advance(MaxInitialRtrAdvertInterval)
	e.snd.take()
	if !e.p.StopAdvertising(1) {
		t.Fatal("was not advertising")
	}
	if lt := checkRA(t, one(t, e.snd.take(), wire.ICMPv6RouterAdvert)); lt != 0 {
		t.Errorf("final RA lifetime %v", lt)
	}
	if e.groupOwn(wire.IPv6AllRouters()) != 0 {
		t.Errorf("all-routers still joined")
	}
	e.clk.Advance(10 * time.Minute)
	e.in(netip.MustParseAddr("fe80::99"), wire.IPv6AllRouters(), 255, enc(&wire.NDPRouterSolicitFields{}))
	e.clk.Advance(time.Second)
	if n := len(filter(t, e.snd.take(), wire.ICMPv6RouterAdvert)); n != 0 {
		t.Errorf("%d RAs after stopping", n)
	}
	if _, ok := e.p.Advertising(1); ok {
		t.Errorf("still advertising")
	}
}

// linkIfc records what is written straight to the link.
type linkIfc struct {
	*fakeIfc
	mu  sync.Mutex
	out [][]byte
}

func (l *linkIfc) OutputLink(dst wire.MAC, et wire.EtherType, pkt *buf.Packet) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if dst != wire.MulticastMACv6(allNodes.As16()) || et != wire.EtherTypeIPv6 {
		panic("unexpected link write")
	}
	l.out = append(l.out, pkt.ToBytes())
	pkt.Release()
	return nil
}

// TestAdvertiseDetach: detaching an advertising interface writes the
// final RA straight to the link.
func TestAdvertiseDetach(t *testing.T) {
	e, _ := routerEnv(t, advCfg)
	e.clk.Advance(MaxInitialRtrAdvertInterval)
	e.snd.take()
	// Re-attach through a link-recording interface with the same state.
	l := &linkIfc{fakeIfc: e.ifc}
	e.p.mu.Lock()
	e.p.att[1].ifc = l
	e.p.mu.Unlock()
	e.p.Detach(1)
	if len(l.out) != 1 {
		t.Fatalf("%d link writes, want the final RA", len(l.out))
	}
	b := l.out[0]
	h := wire.IPv6(b)
	if h.HopLimit() != 255 || h.Src() != ourLL || h.Dst() != allNodes || h.NextHeader() != wire.IPProtoICMPv6 {
		t.Fatalf("header %x", b[:wire.IPv6HeaderLen])
	}
	if lt := checkRA(t, sent{Route: proto.Route{Src: ourLL, Dst: allNodes}, Proto: wire.IPProtoICMPv6, TTL: 255, Data: b[wire.IPv6HeaderLen:]}); lt != 0 {
		t.Errorf("final RA lifetime %v", lt)
	}
}

func TestAdvertiseConfig(t *testing.T) {
	e := newUpEnv(t)
	for _, c := range []AdvertConfig{
		{MaxInterval: time.Second},
		{MaxInterval: 10 * time.Second, MinInterval: 9 * time.Second},
		{RouterLifetime: time.Second},
		{MTU: 1000},
		{Prefixes: []wire.NDPPrefixInfo{pinfo(netip.MustParsePrefix("fe80::/64"), true, true, time.Hour, time.Hour)}},
		{Prefixes: []wire.NDPPrefixInfo{pinfo(prefix1, true, true, time.Hour, 2*time.Hour)}},
	} {
		if err := e.p.Advertise(1, c); !errors.Is(err, ErrInvalid) {
			t.Errorf("Advertise(%+v) = %v", c, err)
		}
	}
	if err := e.p.Advertise(7, AdvertConfig{}); !errors.Is(err, ErrNotAttached) {
		t.Errorf("unattached: %v", err)
	}
	if err := e.p.Advertise(1, AdvertConfig{RouterLifetime: -1}); err != nil {
		t.Fatal(err)
	}
	if c, ok := e.p.Advertising(1); !ok || c.RouterLifetime != 0 || c.MaxInterval != DefaultMaxRtrAdvInterval || c.MinInterval != 200*time.Second {
		t.Errorf("normalized %+v", c)
	}
}
