package arp

import (
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
	"time"

	"ustack/buf"
	"ustack/internal/clock"
	"ustack/link"
	"ustack/network/neigh"
	"ustack/proto"
	"ustack/wire"
)

// frame is one packet an interface was asked to write.
type frame struct {
	Dst  wire.MAC
	ET   wire.EtherType
	Data []byte
}

// fakeIfc is a proto.Interface that records what it sends.
type fakeIfc struct {
	idx   int
	mac   wire.MAC
	addrs []netip.Prefix
	down  bool
	err   error

	mu  sync.Mutex
	out []frame
}

func (f *fakeIfc) Index() int                      { return f.idx }
func (f *fakeIfc) Name() string                    { return "fake0" }
func (f *fakeIfc) MTU() int                        { return 1500 }
func (f *fakeIfc) LinkType() link.Type             { return link.TypeEthernet }
func (f *fakeIfc) HardwareAddr() wire.MAC          { return f.mac }
func (f *fakeIfc) Capabilities() link.Capabilities { return 0 }
func (f *fakeIfc) Up() bool                        { return !f.down }
func (f *fakeIfc) Addrs() []netip.Prefix           { return f.addrs }
func (f *fakeIfc) Output(netip.Addr, wire.EtherType, *buf.Packet) error {
	panic("ARP must not use Output")
}

func (f *fakeIfc) OutputLink(dst wire.MAC, et wire.EtherType, pkt *buf.Packet) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.out = append(f.out, frame{dst, et, pkt.ToBytes()})
	pkt.Release()
	return f.err
}

func (f *fakeIfc) take() []frame {
	f.mu.Lock()
	defer f.mu.Unlock()
	o := f.out
	f.out = nil
	return o
}

// fakeIfs is a proto.Interfaces over fakeIfcs.
type fakeIfs struct{ ifcs []*fakeIfc }

func (s *fakeIfs) Interface(index int) proto.Interface {
	for _, f := range s.ifcs {
		if f.idx == index {
			return f
		}
	}
	return nil
}

func (s *fakeIfs) LocalAddr(a netip.Addr) (int, bool) {
	for _, f := range s.ifcs {
		if hasAddr(f, a) {
			return f.idx, true
		}
	}
	return 0, false
}

func (s *fakeIfs) Broadcast(ifIndex int, a netip.Addr) bool {
	if a == limitedBroadcast {
		return true
	}
	for _, f := range s.ifcs {
		if f.idx != ifIndex {
			continue
		}
		for _, p := range f.addrs {
			if p.Addr().Is4() && p.Bits() < 31 && directedBroadcast(p) == a {
				return true
			}
		}
	}
	return false
}

func (s *fakeIfs) Loopback() proto.Interface { return nil }

func (s *fakeIfs) Each(fn func(proto.Interface)) {
	for _, f := range s.ifcs {
		fn(f)
	}
}

func directedBroadcast(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	for i := 0; i < 4; i++ {
		b[3-i] |= byte(host >> (8 * i))
	}
	return netip.AddrFrom4(b)
}

// sink is the neigh.Sender of the test caches.
type sink struct {
	mu     sync.Mutex
	sent   []frame
	failed []netip.Addr
}

func (s *sink) SendResolved(mac wire.MAC, et wire.EtherType, pkt *buf.Packet) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, frame{mac, et, pkt.ToBytes()})
	pkt.Release()
}

func (s *sink) ResolutionFailed(target netip.Addr, _ wire.EtherType, pkt *buf.Packet) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failed = append(s.failed, target)
	pkt.Release()
}

var (
	t0      = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	ourMAC  = wire.MAC{0x02, 0, 0, 0, 0, 0x01}
	peerMAC = wire.MAC{0x02, 0, 0, 0, 0, 0x02}
	ourIP   = netip.MustParseAddr("192.0.2.1")
	peerIP  = netip.MustParseAddr("192.0.2.2")
	otherIP = netip.MustParseAddr("192.0.2.3")
)

// env is ARP on one attached fake interface with a real cache.
type env struct {
	p     *Protocol
	ifc   *fakeIfc
	ifs   *fakeIfs
	cache *neigh.Cache
	clk   *clock.Fake
	sink  *sink
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ifc := &fakeIfc{idx: 1, mac: ourMAC, addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}}
	ifs := &fakeIfs{ifcs: []*fakeIfc{ifc}}
	p := New(ifs, nil)
	clk := clock.NewFake(t0)
	s := &sink{}
	cache := neigh.New(clk, neigh.Config{Rand: rand.New(rand.NewPCG(1, 1))}, p.Resolver(ifc), s)
	p.Attach(ifc, cache)
	t.Cleanup(cache.Close)
	return &env{p, ifc, ifs, cache, clk, s}
}

// arpPacket builds a received ARP packet.
func arpPacket(f wire.ARPFields) *buf.Packet {
	b := make([]byte, wire.ARPLen)
	f.Encode(b)
	return buf.FromBytes(b)
}

func encode(f wire.ARPFields) []byte {
	b := make([]byte, wire.ARPLen)
	f.Encode(b)
	return b
}

func request(sha wire.MAC, sip, tip netip.Addr) wire.ARPFields {
	return wire.ARPFields{Op: wire.ARPRequest, SenderMAC: sha, SenderIP: sip, TargetIP: tip}
}

func replyTo(sha wire.MAC, sip netip.Addr, tha wire.MAC, tip netip.Addr) wire.ARPFields {
	return wire.ARPFields{Op: wire.ARPReply, SenderMAC: sha, SenderIP: sip, TargetMAC: tha, TargetIP: tip}
}

func (e *env) state(a netip.Addr) neigh.State {
	_, st, _ := e.cache.Lookup(a)
	return st
}
