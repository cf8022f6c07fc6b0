package socket_test

import (
	"net/netip"
	"testing"
	"ustack/proto/prototest"

	"ustack/buf"
	"ustack/proto"
	"ustack/transport/icmp"
	"ustack/transport/tcp"
	"ustack/transport/udp"
	"ustack/wire"
)

// fakeStack is a socket.Provider over a loopback-like proto.Network: UDP
// datagrams written go back into UDP's HandlePacket (a NoEndpoint verdict
// comes back as ICMP port unreachable, as network/ipv4 does), and ICMP echo
// requests are answered by the destination. 10.0.0.1 is the source of every
// route; 192.0.2.0/24 has no route; 10.0.0.255 is a broadcast address.
type fakeStack struct {
	prototest.Groups
	udp  *udp.Protocol
	icmp *icmp.Protocol
}

func (s *fakeStack) UDP() *udp.Protocol   { return s.udp }
func (s *fakeStack) ICMP() *icmp.Protocol { return s.icmp }

// TCP is nil: the fake network carries no TCP (the TCP tests run on real
// stacks over pipes).
func (s *fakeStack) TCP() *tcp.Protocol { return nil }

var (
	hostA = netip.MustParseAddr("10.0.0.1")
	hostB = netip.MustParseAddr("10.0.0.2")
)

func newStack(t *testing.T) *fakeStack {
	s := &fakeStack{}
	n := (*fakeNet)(s)
	s.udp = udp.New(n, &proto.Sysctl{}, nil)
	s.icmp = icmp.New(n, nil)
	return s
}

type fakeNet fakeStack

func (n *fakeNet) MaxHeaderLen() int { return 34 }

func (n *fakeNet) Route(dst, src netip.Addr, _ int) (proto.Route, error) {
	if netip.MustParsePrefix("192.0.2.0/24").Contains(dst) {
		return proto.Route{}, proto.ErrNoRoute
	}
	if !src.IsValid() {
		src = hostA
	}
	return proto.Route{Src: src, Dst: dst, NextHop: dst, IfIndex: 1, MTU: 1500,
		Broadcast: dst == netip.MustParseAddr("10.0.0.255")}, nil
}

func (n *fakeNet) WritePacket(r proto.Route, p wire.IPProtocol, wp proto.WriteParams, pkt *buf.Packet) error {
	info := proto.PacketInfo{Src: r.Src, Dst: r.Dst, Proto: p, IfIndex: 1, TTL: 64, Broadcast: r.Broadcast}
	switch p {
	case wire.IPProtoUDP:
		if n.udp.HandlePacket(info, pkt) == proto.NoEndpoint {
			quote := append([]byte(nil), pkt.Pullup(8)...)
			pkt.Release()
			n.udp.HandleError(&proto.ICMPError{Kind: proto.ErrPortUnreachable, Type: 3, Code: 3,
				From: r.Dst, Src: r.Src, Dst: r.Dst, Proto: p, Quote: quote})
		}
	case wire.IPProtoICMP:
		b := pkt.ToBytes()
		pkt.Release()
		m := wire.ICMPv4(b)
		m.SetType(wire.ICMPv4EchoReply)
		m.UpdateChecksum()
		reply := buf.FromBytes(b)
		if n.icmp.HandlePacket(proto.PacketInfo{Src: r.Dst, Dst: r.Src, Proto: p}, reply) != proto.Consumed {
			reply.Release()
		}
	}
	return nil
}

// icmpErr is a host unreachable about echo request id, sequence 9.
func icmpErr(id uint16) *proto.ICMPError {
	q := make([]byte, 8)
	f := wire.ICMPv4Fields{Type: wire.ICMPv4Echo, Rest: wire.EchoRest(id, 9)}
	f.Encode(q)
	return &proto.ICMPError{Kind: proto.ErrHostUnreachable, Type: 3, Code: 1,
		From: netip.MustParseAddr("10.0.0.254"), Src: hostA, Dst: hostB, Proto: wire.IPProtoICMP, Quote: q}
}

func (n *fakeNet) LocalAddr(a netip.Addr) bool {
	return netip.MustParsePrefix("10.0.0.0/24").Contains(a) || a.IsLoopback()
}
