package ipv6

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
	name  string
	mtu   int
	addrs []netip.Prefix
	caps  link.Capabilities
	// deliver, when set, receives what is sent (a loopback).
	deliver func(*buf.Packet)

	mu   sync.Mutex
	sent []sentPkt
}

type sentPkt struct {
	next netip.Addr
	b    []byte
}

func (f *fakeIf) Index() int                      { return f.index }
func (f *fakeIf) Name() string                    { return f.name }
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
	if f.deliver != nil {
		f.deliver(pkt)
		return nil
	}
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

type fakeIfs struct {
	ifs []*fakeIf
	lo  *fakeIf
}

func (f *fakeIfs) all() []*fakeIf { return append(append([]*fakeIf(nil), f.ifs...), f.lo) }

func (f *fakeIfs) Interface(i int) proto.Interface {
	for _, x := range f.all() {
		if x.index == i {
			return x
		}
	}
	return nil
}
func (f *fakeIfs) LocalAddr(a netip.Addr) (int, bool) {
	for _, x := range f.all() {
		for _, p := range x.addrs {
			if p.Addr() == a {
				return x.index, true
			}
		}
	}
	return 0, false
}
func (f *fakeIfs) Broadcast(int, netip.Addr) bool { return false }
func (f *fakeIfs) Loopback() proto.Interface      { return f.lo }
func (f *fakeIfs) Each(fn func(proto.Interface)) {
	for _, x := range f.all() {
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

// ndSink is an NDHandler that records what it receives.
type ndSink struct {
	mu      sync.Mutex
	got     []wire.ICMPv6Type
	info    []proto.PacketInfo
	changes []string
}

func (n *ndSink) HandleND(ifc proto.Interface, info proto.PacketInfo, pkt *buf.Packet) {
	n.mu.Lock()
	n.got = append(n.got, wire.ICMPv6(pkt.Bytes()).Type())
	n.info = append(n.info, info)
	n.mu.Unlock()
	pkt.Release()
}

func (n *ndSink) GroupChanged(ifIndex int, group netip.Addr, joined bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := "leave"
	if joined {
		s = "join"
	}
	n.changes = append(n.changes, s+" "+group.String())
}

type rig struct {
	p   *Protocol
	clk *clock.Fake
	if1 *fakeIf // fe80::1, 2001:db8:1::1/64
	if2 *fakeIf // fe80::2, 2001:db8:2::1/64
	lo  *fakeIf // ::1, loops back into the protocol
	udp *sink
	sys *proto.Sysctl
}

var (
	local   = netip.MustParseAddr("2001:db8:1::1")
	peer    = netip.MustParseAddr("2001:db8:1::2")
	local2  = netip.MustParseAddr("2001:db8:2::1")
	far     = netip.MustParseAddr("2001:db8:2::2")
	localLL = netip.MustParseAddr("fe80::1")
	peerLL  = netip.MustParseAddr("fe80::99")
	gateway = netip.MustParseAddr("fe80::ff")
)

func newRig(t testing.TB) *rig {
	t.Helper()
	r := &rig{clk: clock.NewFake(time.Unix(1000, 0)), sys: &proto.Sysctl{}}
	r.if1 = &fakeIf{index: 1, name: "eth0", mtu: 1500, addrs: []netip.Prefix{
		netip.MustParsePrefix("fe80::1/64"), netip.MustParsePrefix("2001:db8:1::1/64")}}
	r.if2 = &fakeIf{index: 2, name: "eth1", mtu: 1500, addrs: []netip.Prefix{
		netip.MustParsePrefix("fe80::2/64"), netip.MustParsePrefix("2001:db8:2::1/64")}}
	r.lo = &fakeIf{index: 9, name: "lo", mtu: 65536, caps: link.CapLoopback,
		addrs: []netip.Prefix{netip.MustParsePrefix("::1/128")}}
	r.lo.deliver = func(pkt *buf.Packet) {
		pkt.Flags |= buf.FlagLoopback
		r.p.HandlePacket(r.lo, pkt)
	}
	var rt route.Table
	rt.Add(route.Route{Dst: netip.MustParsePrefix("2001:db8:1::/64"), IfIndex: 1, Origin: route.OriginConnected})
	rt.Add(route.Route{Dst: netip.MustParsePrefix("2001:db8:2::/64"), IfIndex: 2, Origin: route.OriginConnected})
	rt.Add(route.Route{Dst: netip.MustParsePrefix("::/0"), Gateway: gateway, IfIndex: 2})
	r.p = New(&fakeIfs{ifs: []*fakeIf{r.if1, r.if2}, lo: r.lo}, &rt, r.clk, r.sys, nil)
	r.udp = &sink{p: wire.IPProtoUDP}
	r.p.RegisterTransport(r.udp)
	t.Cleanup(r.p.Close)
	return r
}

// ipPacket builds an IPv6 packet: the fixed header from f (hop limit 64
// unless set), then payload (extension headers and upper layer) with
// f.NextHeader naming its first header.
func ipPacket(f wire.IPv6Fields, payload []byte) []byte {
	if f.HopLimit == 0 {
		f.HopLimit = 64
	}
	f.PayloadLen = len(payload)
	b := make([]byte, wire.IPv6HeaderLen+len(payload))
	f.Encode(b)
	copy(b[wire.IPv6HeaderLen:], payload)
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

// icmpMessage builds an ICMPv6 message with a valid checksum.
func icmpMessage(src, dst netip.Addr, f wire.ICMPv6Fields, body []byte) []byte {
	b := make([]byte, wire.ICMPv6HeaderLen+len(body))
	f.Encode(b)
	copy(b[wire.ICMPv6HeaderLen:], body)
	wire.ICMPv6(b).UpdateChecksum(src, dst)
	return b
}

// optsHeader builds a hop-by-hop or destination options header naming
// next, holding opts, padded to 8 bytes.
func optsHeader(next wire.IPProtocol, opts ...wire.IPv6OptionFields) []byte {
	f := wire.IPv6OptionsHeaderFields{NextHeader: next, Options: opts}
	b := make([]byte, f.Len())
	f.Encode(b)
	return b
}

// fragHeader builds a fragment header.
func fragHeader(next wire.IPProtocol, off int, more bool, id uint32) []byte {
	b := make([]byte, wire.IPv6FragmentLen)
	(&wire.IPv6FragmentFields{NextHeader: next, Offset: off, More: more, ID: id}).Encode(b)
	return b
}

func cat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

func (r *rig) input(ifc *fakeIf, b []byte) {
	r.p.HandlePacket(ifc, buf.FromBytes(b))
}

// sentICMP parses one sent packet as IPv6 carrying ICMPv6 directly.
func sentICMP(t *testing.T, s sentPkt) (wire.IPv6, wire.ICMPv6) {
	t.Helper()
	h, err := wire.ParseIPv6(s.b)
	if err != nil || h.NextHeader() != wire.IPProtoICMPv6 {
		t.Fatalf("sent packet is not ICMPv6: %v, next header %v", err, h.NextHeader())
	}
	m, err := wire.ParseICMPv6(h.Payload())
	if err != nil || !m.ChecksumValid(h.Src(), h.Dst()) {
		t.Fatalf("bad ICMPv6 message: %v", err)
	}
	return h, m
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}
