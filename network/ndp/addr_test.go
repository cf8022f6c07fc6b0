package ndp

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"ustack/wire"
)

// startSLAAC sends an RA for prefix1 and leaves the SLAAC address
// tentative.
func startSLAAC(e *env) {
	e.in(routerLL, allNodes, 255, ra(raOpts{prefixes: []wire.NDPPrefixInfo{pinfo(prefix1, true, true, time.Hour, time.Hour)}}))
	e.snd.take()
	e.host.takeLog()
}

func TestDADDuplicate(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   func(e *env)
	}{
		{"NS from ::", func(e *env) {
			e.in(netip.IPv6Unspecified(), wire.SolicitedNodeMulticast(ourSLAAC), 255, ns(ourSLAAC, nil))
		}},
		{"NA", func(e *env) {
			e.in(peerLL, allNodes, 255, na(ourSLAAC, false, false, true, mac(peerMAC)))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newUpEnv(t)
			startSLAAC(e)
			tc.in(e)
			e.clk.Advance(10 * time.Second)
			if hasAddr(e.ifc, ourSLAAC) {
				t.Fatal("duplicate address assigned")
			}
			// The group is the link-local address's too (same low 24
			// bits): only the SLAAC address's hold on it goes.
			if n := e.groupOwn(wire.SolicitedNodeMulticast(ourSLAAC)); n != 1 {
				t.Errorf("group held %d times, want 1", n)
			}
			if out := e.snd.take(); len(filter(t, out, wire.ICMPv6NeighborAdvert)) != 0 {
				t.Error("answered for a tentative address")
			}
			if ai := e.addrInfo(ourSLAAC); !ai.Duplicate || ai.Tentative {
				t.Errorf("address %+v", ai)
			}
			if e.p.st.duplicates.Load() != 1 {
				t.Errorf("duplicates %d", e.p.st.duplicates.Load())
			}
			// The next RA does not try again.
			startSLAAC(e)
			e.clk.Advance(10 * time.Second)
			if hasAddr(e.ifc, ourSLAAC) {
				t.Error("assigned on the next RA")
			}
		})
	}
}

// TestDADIgnoresResolution: an NS for a tentative address from a unicast
// source is not evidence of a duplicate, and is not answered (RFC 4862
// §5.4.3).
func TestDADIgnoresResolution(t *testing.T) {
	e := newUpEnv(t)
	startSLAAC(e)
	e.in(peerLL, wire.SolicitedNodeMulticast(ourSLAAC), 255, ns(ourSLAAC, mac(peerMAC)))
	if out := e.snd.take(); len(out) != 0 {
		t.Errorf("sent %d packets", len(out))
	}
	if e.cache.Len() != 0 {
		t.Errorf("cache %v", e.cache.Entries())
	}
	e.clk.Advance(time.Second)
	if !hasAddr(e.ifc, ourSLAAC) {
		t.Error("address not assigned")
	}
}

func TestLinkLocalDuplicate(t *testing.T) {
	e := newEnv(t)
	e.clk.Advance(MaxRtrSolicitationDelay)
	e.snd.take()
	e.in(netip.IPv6Unspecified(), wire.SolicitedNodeMulticast(ourLL), 255, ns(ourLL, nil))
	e.clk.Advance(time.Minute)
	if hasAddr(e.ifc, ourLL) {
		t.Error("duplicate link-local address assigned")
	}
	if n := len(filter(t, e.snd.take(), wire.ICMPv6RouterSolicit)); n != 0 {
		t.Errorf("%d RS without a link-local address", n)
	}
}

func TestStaticAddress(t *testing.T) {
	e := newUpEnv(t)
	static := netip.MustParsePrefix("2001:db8:5::10/64")
	if err := e.p.AddAddress(1, static); err != nil {
		t.Fatal(err)
	}
	if log := e.host.takeLog(); hasLog(log, "add "+static.String()+" route=true") {
		t.Fatal("added before DAD")
	}
	dad := one(t, e.snd.take(), wire.ICMPv6NeighborSolicit)
	if q, _ := wire.ParseNDPNeighborSolicit(dad.icmp(t).Body()); q.Target() != static.Addr() {
		t.Errorf("DAD for %v", q.Target())
	}
	e.clk.Advance(time.Second)
	if log := e.host.takeLog(); !hasLog(log, "add "+static.String()+" route=true") {
		t.Errorf("host log %q", log)
	}
	// Static addresses never expire.
	e.clk.Advance(1000 * time.Hour)
	if !hasAddr(e.ifc, static.Addr()) {
		t.Error("static address expired")
	}
	if err := e.p.AddAddress(1, static); !errors.Is(err, ErrExists) {
		t.Errorf("second add: %v, want ErrExists", err)
	}
	if err := e.p.AddAddress(9, static); !errors.Is(err, ErrNotAttached) {
		t.Errorf("add on another interface: %v", err)
	}
	if err := e.p.AddAddress(1, netip.MustParsePrefix("10.0.0.1/8")); !errors.Is(err, ErrInvalid) {
		t.Errorf("IPv4 add: %v", err)
	}
	// Removal leaves the group; the caller takes the address off.
	if !e.p.RemoveAddress(1, static.Addr()) {
		t.Error("RemoveAddress: not found")
	}
	if log := e.host.takeLog(); !hasLog(log, "leave "+wire.SolicitedNodeMulticast(static.Addr()).String()) || hasLog(log, "remove "+static.Addr().String()) {
		t.Errorf("host log %q", log)
	}
}

func TestStaticDuplicate(t *testing.T) {
	e := newUpEnv(t)
	static := netip.MustParsePrefix("2001:db8:5::10/64")
	e.p.AddAddress(1, static)
	e.in(peerLL, allNodes, 255, na(static.Addr(), false, false, true, mac(peerMAC)))
	e.clk.Advance(time.Minute)
	if hasAddr(e.ifc, static.Addr()) {
		t.Error("duplicate static address assigned")
	}
}

func TestDADOff(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.DADTransmits = -1 })
	e.clk.Advance(MaxRtrSolicitationDelay)
	if !hasAddr(e.ifc, ourLL) {
		t.Error("link-local not assigned at once")
	}
	if n := len(filter(t, e.snd.take(), wire.ICMPv6NeighborSolicit)); n != 0 {
		t.Errorf("%d DAD NS with DAD off", n)
	}
}

func TestDADTransmits(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.DADTransmits = 3 })
	e.clk.Advance(MaxRtrSolicitationDelay)
	e.clk.Advance(2500 * time.Millisecond)
	if hasAddr(e.ifc, ourLL) {
		t.Fatal("assigned early")
	}
	e.clk.Advance(500 * time.Millisecond)
	if !hasAddr(e.ifc, ourLL) {
		t.Fatal("not assigned after 3 RetransTimers")
	}
	if n := len(filter(t, e.snd.take(), wire.ICMPv6NeighborSolicit)); n != 3 {
		t.Errorf("%d DAD NS, want 3", n)
	}
}

func TestDeprecatedAtOnce(t *testing.T) {
	e := newUpEnv(t)
	e.in(routerLL, allNodes, 255, ra(raOpts{prefixes: []wire.NDPPrefixInfo{pinfo(prefix1, false, true, time.Hour, 0)}}))
	e.clk.Advance(time.Second)
	log := e.host.takeLog()
	if !hasLog(log, "add "+netip.PrefixFrom(ourSLAAC, 64).String()+" route=false") || !hasLog(log, "deprecated "+ourSLAAC.String()+" true") {
		t.Errorf("host log %q", log)
	}
	// A new preferred lifetime brings it back.
	e.in(routerLL, allNodes, 255, ra(raOpts{prefixes: []wire.NDPPrefixInfo{pinfo(prefix1, false, true, time.Hour, time.Hour)}}))
	if log := e.host.takeLog(); !hasLog(log, "deprecated "+ourSLAAC.String()+" false") {
		t.Errorf("host log %q", log)
	}
}
