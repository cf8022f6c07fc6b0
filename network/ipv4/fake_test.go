package ipv4

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"ustack/buf"
	"ustack/internal/clock"
	"ustack/link"
	"ustack/network/route"
	"ustack/proto"
	"ustack/wire"
)

// fakeIf is a proto.Interface that records what is sent through it.
type fakeIf struct {
	index int
	mtu   int
	addrs []netip.Prefix
	caps  link.Capabilities

	mu   sync.Mutex
	sent []sentPkt
}

type sentPkt struct {
	next netip.Addr
	b    []byte
}

func (f *fakeIf) Index() int                      { return f.index }
func (f *fakeIf) Name() string                    { return "fake" }
func (f *fakeIf) MTU() int                        { return f.mtu }
func (f *fakeIf) LinkType() link.Type             { return link.TypeEthernet }
func (f *fakeIf) HardwareAddr() wire.MAC          { return wire.MAC{2, 0, 0, 0, 0, byte(f.index)} }
func (f *fakeIf) Capabilities() link.Capabilities { return f.caps }
func (f *fakeIf) Up() bool                        { return true }
func (f *fakeIf) Addrs() []netip.Prefix           { return f.addrs }
func (f *fakeIf) Output(next netip.Addr, et wire.EtherType, pkt *buf.Packet) error {
	f.mu.Lock()
	f.sent = append(f.sent, sentPkt{next, pkt.ToBytes()})
	f.mu.Unlock()
	pkt.Release()
	return nil
}
func (f *fakeIf) OutputLink(dst wire.MAC, et wire.EtherType, pkt *buf.Packet) error {
	return f.Output(netip.Addr{}, et, pkt)
}

func (f *fakeIf) take() []sentPkt {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.sent
	f.sent = nil
	return s
}

type fakeIfs struct{ ifs []*fakeIf }

func (f *fakeIfs) Interface(i int) proto.Interface {
	for _, x := range f.ifs {
		if x.index == i {
			return x
		}
	}
	return nil
}
func (f *fakeIfs) LocalAddr(a netip.Addr) (int, bool) {
	for _, x := range f.ifs {
		for _, p := range x.addrs {
			if p.Addr() == a {
				return x.index, true
			}
		}
	}
	return 0, false
}
func (f *fakeIfs) Broadcast(i int, a netip.Addr) bool {
	return a == limitedBroadcast || (a == netip.MustParseAddr("10.0.0.255") && i == 1)
}
func (f *fakeIfs) Loopback() proto.Interface { return nil }
func (f *fakeIfs) Each(fn func(proto.Interface)) {
	for _, x := range f.ifs {
		fn(x)
	}
}

// sink is a transport that records what it receives.
type sink struct {
	p        wire.IPProtocol
	mu       sync.Mutex
	got      [][]byte
	info     []proto.PacketInfo
	errs     []proto.ICMPError
	noListen bool
}

func (s *sink) Protocol() wire.IPProtocol { return s.p }
func (s *sink) HandlePacket(info proto.PacketInfo, pkt *buf.Packet) proto.Verdict {
	if s.noListen {
		return proto.NoEndpoint
	}
	s.mu.Lock()
	s.got = append(s.got, pkt.ToBytes())
	s.info = append(s.info, info)
	s.mu.Unlock()
	pkt.Release()
	return proto.Consumed
}
func (s *sink) HandleError(e *proto.ICMPError) {
	s.mu.Lock()
	c := *e
	c.Quote = append([]byte(nil), e.Quote...)
	s.errs = append(s.errs, c)
	s.mu.Unlock()
}

type rig struct {
	p   *Protocol
	clk *clock.Fake
	if1 *fakeIf // 10.0.0.1/24
	if2 *fakeIf // 10.0.1.1/24
	udp *sink
	sys *proto.Sysctl
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{clk: clock.NewFake(time.Unix(1000, 0)), sys: &proto.Sysctl{}}
	r.if1 = &fakeIf{index: 1, mtu: 1500, addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}}
	r.if2 = &fakeIf{index: 2, mtu: 1500, addrs: []netip.Prefix{netip.MustParsePrefix("10.0.1.1/24")}}
	var rt route.Table
	rt.Add(route.Route{Dst: netip.MustParsePrefix("10.0.0.0/24"), IfIndex: 1, Origin: route.OriginConnected})
	rt.Add(route.Route{Dst: netip.MustParsePrefix("10.0.1.0/24"), IfIndex: 2, Origin: route.OriginConnected})
	rt.Add(route.Route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: netip.MustParseAddr("10.0.1.254"), IfIndex: 2})
	r.p = New(&fakeIfs{[]*fakeIf{r.if1, r.if2}}, &rt, r.clk, r.sys, nil)
	r.udp = &sink{p: wire.IPProtoUDP}
	r.p.RegisterTransport(r.udp)
	t.Cleanup(r.p.Close)
	return r
}

var (
	peer  = netip.MustParseAddr("10.0.0.2")
	local = netip.MustParseAddr("10.0.0.1")
)

// ipPacket builds an IPv4 packet with the given fields and payload.
func ipPacket(f wire.IPv4Fields, payload []byte) []byte {
	if f.TTL == 0 {
		f.TTL = 64
	}
	f.TotalLen = f.Len() + len(payload)
	b := make([]byte, f.TotalLen)
	f.Encode(b)
	copy(b[f.Len():], payload)
	return b
}

// udpDatagram builds a UDP datagram with a valid checksum.
func udpDatagram(src, dst netip.Addr, sport, dport uint16, data []byte) []byte {
	b := make([]byte, 8+len(data))
	f := wire.UDPFields{SrcPort: sport, DstPort: dport, Length: len(b)}
	f.Encode(b)
	copy(b[8:], data)
	wire.UDP(b).SetChecksum(wire.UDPChecksum(wire.PseudoHeaderChecksum(wire.IPProtoUDP, src, dst, len(b)), wire.Checksum(b, 0)))
	return b
}

func (r *rig) input(ifc *fakeIf, b []byte) {
	r.p.HandlePacket(ifc, buf.FromBytes(b))
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}
