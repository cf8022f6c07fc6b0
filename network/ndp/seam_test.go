package ndp

import (
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
	"time"

	"ustack/buf"
	"ustack/internal/clock"
	"ustack/network/ipv6"
	"ustack/network/neigh"
	"ustack/network/route"
	"ustack/proto"
	"ustack/wire"
)

// ND over the real network/ipv6: the seam both ways.

var (
	_ Sender             = (*ipv6.Protocol)(nil)
	_ ipv6.NDHandler     = (*Protocol)(nil)
	_ ipv6.GroupObserver = (*Protocol)(nil)
)

// outIfc is a fakeIfc that records what IPv6 sends out of it.
type outIfc struct {
	*fakeIfc
	mu  sync.Mutex
	out []outPkt
}

type outPkt struct {
	next netip.Addr
	data []byte
}

func (o *outIfc) Output(next netip.Addr, et wire.EtherType, pkt *buf.Packet) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.out = append(o.out, outPkt{next, pkt.ToBytes()})
	pkt.Release()
	return nil
}

func (o *outIfc) take() []outPkt {
	o.mu.Lock()
	defer o.mu.Unlock()
	r := o.out
	o.out = nil
	return r
}

// oneIfs is a proto.Interfaces of one interface.
type oneIfs struct{ ifc *outIfc }

func (s oneIfs) Interface(i int) proto.Interface {
	if i == s.ifc.idx {
		return s.ifc
	}
	return nil
}
func (s oneIfs) LocalAddr(a netip.Addr) (int, bool) { return s.ifc.idx, hasAddr(s.ifc, a) }
func (s oneIfs) Broadcast(int, netip.Addr) bool     { return false }
func (s oneIfs) Loopback() proto.Interface          { return nil }
func (s oneIfs) Each(f func(proto.Interface))       { f(s.ifc) }

// v6Host is fakeHost whose group changes go to IPv6, as the stack's will.
type v6Host struct {
	*fakeHost
	v6 *ipv6.Protocol
}

func (h v6Host) JoinGroup(i int, g netip.Addr) error {
	h.fakeHost.JoinGroup(i, g)
	return h.v6.JoinGroup(i, g)
}

func (h v6Host) LeaveGroup(i int, g netip.Addr) error {
	h.fakeHost.LeaveGroup(i, g)
	return h.v6.LeaveGroup(i, g)
}

func TestOverIPv6(t *testing.T) {
	clk := clock.NewFake(t0)
	ifc := &outIfc{fakeIfc: &fakeIfc{idx: 1, mac: ourMAC, mtu: 1500}}
	v6 := ipv6.New(oneIfs{ifc}, &route.Table{}, clk, nil, nil)
	p := New(v6, Config{Rand: rand.New(rand.NewPCG(3, 4))}, nil)
	v6.SetNDHandler(p)
	cache := neigh.New(clk, neigh.Config{}, p.Resolver(ifc), &sink{})
	t.Cleanup(cache.Close)
	host := v6Host{&fakeHost{ifc: ifc.fakeIfc, dep: map[netip.Addr]bool{}, grp: map[netip.Addr]int{}}, v6}
	p.Attach(ifc, cache, host)

	clk.Advance(MaxRtrSolicitationDelay)
	out := ifc.take()
	if len(out) != 2 {
		t.Fatalf("%d packets, want MLD report and DAD NS", len(out))
	}
	sn := wire.SolicitedNodeMulticast(ourLL)
	// The MLD report: hop-by-hop router alert first, hop limit 1.
	h, _ := wire.ParseIPv6(out[0].data)
	if h.NextHeader() != wire.IPProtoHopByHop || h.HopLimit() != 1 || !h.Src().IsUnspecified() ||
		h.Dst() != wire.IPv6AllMLDv2Routers() || out[0].next != wire.IPv6AllMLDv2Routers() {
		t.Errorf("report header: next %v hop limit %d %v -> %v", h.NextHeader(), h.HopLimit(), h.Src(), h.Dst())
	}
	it := wire.NewIPv6ExtIter(h.NextHeader(), h.Payload())
	ext, ok := it.Next()
	if !ok {
		t.Fatalf("no hop-by-hop header: %v", it.Err())
	}
	oit := wire.NewIPv6OptIter(ext.Options())
	if o, ok := oit.Next(); !ok || o.Type != wire.IPv6OptRouterAlert {
		t.Errorf("first option %v %v, want router alert", o, ok)
	}
	if _, ok := it.Next(); ok || it.Upper() != wire.IPProtoICMPv6 {
		t.Errorf("upper layer %v", it.Upper())
	}
	if m := wire.ICMPv6(h.Payload()[it.UpperOffset():]); m.Type() != wire.ICMPv6MLDv2Report || !m.ChecksumValid(h.Src(), h.Dst()) {
		t.Errorf("report %v, checksum valid %v", m.Type(), m.ChecksumValid(h.Src(), h.Dst()))
	}
	// The DAD solicitation.
	h, _ = wire.ParseIPv6(out[1].data)
	if h.NextHeader() != wire.IPProtoICMPv6 || h.HopLimit() != 255 || !h.Src().IsUnspecified() || h.Dst() != sn {
		t.Errorf("DAD header: next %v hop limit %d %v -> %v", h.NextHeader(), h.HopLimit(), h.Src(), h.Dst())
	}
	if m := wire.ICMPv6(h.Payload()); m.Type() != wire.ICMPv6NeighborSolicit || !m.ChecksumValid(h.Src(), h.Dst()) {
		t.Errorf("DAD %v, checksum valid %v", m.Type(), m.ChecksumValid(h.Src(), h.Dst()))
	}

	// A neighbour's solicitation, through IPv6's input, is answered.
	clk.Advance(time.Second)
	if !hasAddr(ifc, ourLL) {
		t.Fatal("link-local address not assigned")
	}
	ifc.take()
	msg := wire.ICMPv6(ns(ourLL, mac(peerMAC)))
	msg.UpdateChecksum(peerLL, sn)
	pkt := buf.New(buf.DefaultHeadroom, wire.IPv6HeaderLen+len(msg))
	(&wire.IPv6Fields{PayloadLen: len(msg), NextHeader: wire.IPProtoICMPv6, HopLimit: 255, Src: peerLL, Dst: sn}).Encode(pkt.Bytes())
	copy(pkt.Bytes()[wire.IPv6HeaderLen:], msg)
	v6.HandlePacket(ifc, pkt)
	out = ifc.take()
	if len(out) != 1 {
		t.Fatalf("%d packets, want the NA", len(out))
	}
	h, _ = wire.ParseIPv6(out[0].data)
	m := wire.ICMPv6(h.Payload())
	if m.Type() != wire.ICMPv6NeighborAdvert || h.HopLimit() != 255 || h.Src() != ourLL || h.Dst() != peerLL ||
		out[0].next != peerLL || !m.ChecksumValid(h.Src(), h.Dst()) {
		t.Errorf("answer %v hop limit %d %v -> %v via %v", m.Type(), h.HopLimit(), h.Src(), h.Dst(), out[0].next)
	}
	if en, ok := cacheEntry(cache, peerLL); !ok || en.MAC != peerMAC {
		t.Errorf("peer entry %+v", en)
	}
	// The solicited-node group was joined at IPv6 (for DAD) and MLD
	// counted it once: joined once by ND, once by IPv6's observer.
	p.mu.Lock()
	gr := p.att[1].groups[sn]
	p.mu.Unlock()
	if gr == nil || gr.own != 1 || gr.refs != 2 {
		t.Errorf("group %+v, want own 1 refs 2", gr)
	}
}

func cacheEntry(c *neigh.Cache, a netip.Addr) (neigh.Entry, bool) {
	for _, en := range c.Entries() {
		if en.Addr == a {
			return en, true
		}
	}
	return neigh.Entry{}, false
}
