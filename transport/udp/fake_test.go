package udp_test

import (
	"net/netip"
	"sync"
	"testing"
	"ustack/proto/prototest"

	"ustack/buf"
	"ustack/link"
	"ustack/proto"
	"ustack/transport/udp"
	"ustack/wire"
)

// fakeNet is a loopback-like proto.Network: every packet written goes back
// into the protocol's HandlePacket, and a NoEndpoint verdict for a unicast
// datagram comes back as an ICMP port unreachable through HandleError, as
// network/ipv4 would do. 192.0.2.0/24 has no route; 10.0.0.255 and
// 255.255.255.255 are broadcast.
type fakeNet struct {
	prototest.Groups
	p    *udp.Protocol
	caps link.Capabilities
	loop bool // deliver written packets back

	mu   sync.Mutex
	sent []sent
}

type sent struct {
	route   proto.Route
	wp      proto.WriteParams
	offload buf.Offload
	data    []byte // as written, before any offload completion
	verdict proto.Verdict
}

var (
	addrA      = netip.MustParseAddr("10.0.0.1")
	addrB      = netip.MustParseAddr("10.0.0.2")
	bcast      = netip.MustParseAddr("10.0.0.255")
	allOnes    = netip.MustParseAddr("255.255.255.255")
	unroutable = netip.MustParsePrefix("192.0.2.0/24")
)

func newFake(t testing.TB) (*fakeNet, *udp.Protocol, *proto.Sysctl) {
	t.Helper()
	f := &fakeNet{loop: true}
	sys := &proto.Sysctl{}
	f.p = udp.New(f, sys, nil)
	return f, f.p, sys
}

func (f *fakeNet) MaxHeaderLen() int { return 14 + wire.IPv4MinHeaderLen }

func (f *fakeNet) Route(dst, src netip.Addr, ifIndex int) (proto.Route, error) {
	if unroutable.Contains(dst) {
		return proto.Route{}, proto.ErrNoRoute
	}
	if !src.IsValid() {
		src = addrA
	}
	return proto.Route{Src: src, Dst: dst, NextHop: dst, IfIndex: 1, MTU: 1500,
		Local:     dst == addrA || dst == addrB,
		Broadcast: dst == bcast || dst == allOnes,
		Multicast: dst.IsMulticast(),
		Caps:      f.caps}, nil
}

func (f *fakeNet) WritePacket(r proto.Route, p wire.IPProtocol, wp proto.WriteParams, pkt *buf.Packet) error {
	s := sent{route: r, wp: wp, offload: pkt.Offload, data: pkt.ToBytes()}
	if pkt.Offload.NeedsCsum {
		// Complete the partial checksum as a link would: CsumStart is
		// relative to the transport header here (no IP header yet).
		b := pkt.Bytes()
		at := int(pkt.Offload.CsumStart) + int(pkt.Offload.CsumOffset)
		c := ^wire.Checksum(b[pkt.Offload.CsumStart:], 0)
		b[at], b[at+1] = byte(c>>8), byte(c)
		pkt.Offload = buf.Offload{}
	}
	if !f.loop {
		pkt.Release()
		f.record(s)
		return nil
	}
	info := proto.PacketInfo{Src: r.Src, Dst: r.Dst, Proto: p, IfIndex: 1, TTL: 64,
		Broadcast: r.Broadcast, Multicast: r.Multicast}
	s.verdict = f.p.HandlePacket(info, pkt)
	f.record(s)
	if s.verdict == proto.NoEndpoint {
		quote := append([]byte(nil), pkt.Pullup(wire.UDPHeaderLen)...)
		pkt.Release()
		if !r.Broadcast && !r.Multicast {
			f.p.HandleError(&proto.ICMPError{Kind: proto.ErrPortUnreachable, Type: 3, Code: 3,
				From: r.Dst, Src: r.Src, Dst: r.Dst, Proto: p, Quote: quote})
		}
	}
	return nil
}

func (f *fakeNet) record(s sent) {
	f.mu.Lock()
	f.sent = append(f.sent, s)
	f.mu.Unlock()
}

func (f *fakeNet) last(t *testing.T) sent {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.sent) == 0 {
		t.Fatal("nothing sent")
	}
	return f.sent[len(f.sent)-1]
}

// datagram builds a UDP datagram from src to dst with a correct checksum.
func datagram(src, dst netip.AddrPort, payload []byte) []byte {
	b := make([]byte, wire.UDPHeaderLen+len(payload))
	f := wire.UDPFields{SrcPort: src.Port(), DstPort: dst.Port(), Length: len(b)}
	f.Encode(b)
	copy(b[wire.UDPHeaderLen:], payload)
	pseudo := wire.PseudoHeaderChecksum(wire.IPProtoUDP, src.Addr(), dst.Addr(), len(b))
	wire.UDP(b).SetChecksum(wire.UDPChecksum(pseudo, wire.Checksum(b, 0)))
	return b
}

func info(src, dst netip.AddrPort) proto.PacketInfo {
	return proto.PacketInfo{Src: src.Addr(), Dst: dst.Addr(), Proto: wire.IPProtoUDP, IfIndex: 1, TTL: 64}
}

func mustBind(t *testing.T, p *udp.Protocol, s string, o udp.Options) *udp.Endpoint {
	t.Helper()
	e, err := p.Bind(netip.MustParseAddrPort(s), o)
	if err != nil {
		t.Fatalf("Bind(%s): %v", s, err)
	}
	t.Cleanup(e.Close)
	return e
}

func recvString(t *testing.T, e *udp.Endpoint) (string, netip.AddrPort) {
	t.Helper()
	pkt, from, ok := e.Recv()
	if !ok {
		t.Fatalf("Recv on %v: nothing queued", e.LocalAddr())
	}
	defer pkt.Release()
	return string(pkt.ToBytes()), from
}

func expectEmpty(t *testing.T, e *udp.Endpoint) {
	t.Helper()
	if pkt, from, ok := e.Recv(); ok {
		t.Errorf("Recv on %v: got %q from %v, want nothing", e.LocalAddr(), pkt.ToBytes(), from)
		pkt.Release()
	}
}

// LocalAddr: the fake network's hosts are 10.0.0.0/24 (broadcast included)
// and loopback.
func (f *fakeNet) LocalAddr(a netip.Addr) bool {
	return netip.MustParsePrefix("10.0.0.0/24").Contains(a) || a.IsLoopback()
}
