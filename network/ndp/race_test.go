package ndp

import (
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"ustack/buf"
	"ustack/internal/clock"
	"ustack/network/neigh"
	"ustack/proto"
	"ustack/wire"
)

// TestConcurrent runs ND on the real clock (in a synctest bubble, so in
// virtual time) with messages arriving from several goroutines while its
// timers fire, for the race detector, then checks it settled.
func TestConcurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ifc := &fakeIfc{idx: 1, mac: ourMAC, mtu: 1500}
		snd := &fakeSender{route: func(d netip.Addr) (proto.Route, error) {
			return proto.Route{Dst: d, NextHop: routerLL, IfIndex: 1}, nil
		}}
		p := New(snd, Config{}, nil)
		cache := neigh.New(clock.Real{}, neigh.Config{Rand: rand.New(rand.NewPCG(1, 1))}, p.Resolver(ifc), &sink{})
		host := &fakeHost{ifc: ifc, dep: map[netip.Addr]bool{}, grp: map[netip.Addr]int{}}
		p.Attach(ifc, cache, host)
		time.Sleep(2 * time.Second) // link-local through DAD

		in := func(src, dst netip.Addr, hl uint8, msg []byte) {
			m := wire.ICMPv6(msg)
			m.UpdateChecksum(src, dst)
			p.HandleND(ifc, proto.PacketInfo{Src: src, Dst: dst, IfIndex: 1, TTL: hl}, buf.FromBytes(m))
		}
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Go(func() {
				peer := netip.AddrFrom16([16]byte{0xfe, 0x80, 15: byte(0x20 + i)})
				pm := wire.MAC{0x02, 0, 0, 0, 1, byte(i)}
				for j := range 30 {
					in(peer, ourLL, 255, ns(ourLL, &pm))
					in(routerLL, allNodes, 255, ra(raOpts{lifetime: 30 * time.Second, slla: mac(peerMAC),
						prefixes: []wire.NDPPrefixInfo{pinfo(prefix1, true, true, 20*time.Second, 10*time.Second)}}))
					cache.Output(peer, wire.EtherTypeIPv6, buf.FromBytes([]byte("x")))
					in(peer, ourLL, 255, na(peer, false, true, true, &pm))
					in(querier, allNodes, 1, query(500*time.Millisecond, netip.IPv6Unspecified(), true))
					g := netip.AddrFrom16([16]byte{0xff, 0x05, 14: byte(i), 15: byte(j)})
					p.Join(1, g)
					in(routerLL, ourLL, 255, enc(&wire.NDPRedirectFields{Target: peer, Dst: netip.MustParseAddr("2001:db8:9::1")}))
					time.Sleep(100 * time.Millisecond)
					p.Leave(1, g)
				}
			})
		}
		wg.Wait()
		time.Sleep(time.Hour) // everything learned expires
		synctest.Wait()
		if !hasAddr(ifc, ourLL) || hasAddr(ifc, ourSLAAC) {
			t.Errorf("addresses %v", ifc.Addrs())
		}
		if rs := host.routes(); len(rs) != 0 {
			t.Errorf("routes left: %v", rs)
		}
		if gs := p.Groups(1); len(gs) != 1 || gs[0] != wire.SolicitedNodeMulticast(ourLL) {
			t.Errorf("groups left: %v", gs)
		}
		p.Detach(1)
		cache.Close()
	})
}
