package icmp_test

import (
	"errors"
	"net/netip"
	"syscall"
	"testing"

	"ustack/buf"
	"ustack/proto"
	"ustack/proto/prototest"
	"ustack/transport/icmp"
	"ustack/wire"
)

var (
	local6 = netip.MustParseAddr("2001:db8::1")
	peer6  = netip.MustParseAddr("2001:db8::2")
)

// echoNet6 answers ICMPv6 echo requests as a peer's network/ipv6 would,
// and reports "packet too big" for requests over 1280 bytes.
type echoNet6 struct {
	prototest.Groups
	p    *icmp.Protocol
	sent [][]byte
}

func (n *echoNet6) MaxHeaderLen() int           { return 54 }
func (n *echoNet6) LocalAddr(a netip.Addr) bool { return a == local6 }

func (n *echoNet6) Route(dst, src netip.Addr, _ int) (proto.Route, error) {
	if !src.IsValid() {
		src = local6
	}
	return proto.Route{Src: src, Dst: dst, NextHop: dst, IfIndex: 1, MTU: 1500}, nil
}

func (n *echoNet6) WritePacket(r proto.Route, p wire.IPProtocol, wp proto.WriteParams, pkt *buf.Packet) error {
	b := pkt.ToBytes()
	pkt.Release()
	n.sent = append(n.sent, b)
	if len(b) > 1280 {
		n.p.HandleError(&proto.ICMPError{Kind: proto.ErrFragNeeded, Type: 2, From: r.Dst,
			Src: r.Src, Dst: r.Dst, Proto: p, MTU: 1280, Quote: b[:8]})
		return nil
	}
	reply := append([]byte(nil), b...)
	m := wire.ICMPv6(reply)
	m.SetType(wire.ICMPv6EchoReply)
	m.UpdateChecksum(r.Dst, r.Src)
	rp := buf.FromBytes(reply)
	if n.p.HandlePacket(proto.PacketInfo{Src: r.Dst, Dst: r.Src, Proto: p, TTL: 64}, rp) != proto.Consumed {
		rp.Release()
	}
	return nil
}

func echo6(seq uint16, n int) []byte {
	b := make([]byte, 8+n)
	(&wire.ICMPv6Fields{Type: wire.ICMPv6EchoRequest, Rest: wire.EchoRest(0, seq)}).Encode(b)
	return b
}

func TestEcho6(t *testing.T) {
	n := &echoNet6{}
	n.p = icmp.New6(n, nil)
	p := n.p
	if p.Protocol() != wire.IPProtoICMPv6 {
		t.Fatalf("protocol %v", p.Protocol())
	}
	if _, err := p.Open(netip.MustParseAddr("10.0.0.1"), 0); !errors.Is(err, syscall.EAFNOSUPPORT) {
		t.Errorf("IPv4 laddr: %v, want EAFNOSUPPORT", err)
	}
	e, err := p.Open(netip.Addr{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e.LocalAddr() != netip.IPv6Unspecified() {
		t.Errorf("local %v", e.LocalAddr())
	}
	if _, err := e.WriteTo(echo6(7, 16), netip.MustParseAddr("10.0.0.2")); !errors.Is(err, syscall.EAFNOSUPPORT) {
		t.Errorf("IPv4 dst: %v", err)
	}
	if _, err := e.WriteTo(echo(0, 1, "v4 type"), peer6); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("ICMPv4 echo on an ICMPv6 socket: %v", err)
	}
	if _, err := e.WriteTo(echo6(7, 16), peer6); err != nil {
		t.Fatal(err)
	}
	// The request carries the endpoint's identifier and a checksum over
	// the pseudo-header (RFC 4443 §2.3).
	m := wire.ICMPv6(n.sent[0])
	if m.ID() != e.ID() || !m.ChecksumValid(local6, peer6) {
		t.Errorf("request id %d (want %d), checksum valid %v", m.ID(), e.ID(), m.ChecksumValid(local6, peer6))
	}
	pkt, from, ok := e.Recv()
	if !ok || from != peer6 {
		t.Fatalf("reply %v from %v", ok, from)
	}
	r := wire.ICMPv6(pkt.ToBytes())
	pkt.Release()
	if r.Type() != wire.ICMPv6EchoReply || r.Seq() != 7 {
		t.Errorf("reply %v seq %d", r.Type(), r.Seq())
	}
	// An error about a request reaches the endpoint.
	if _, err := e.WriteTo(echo6(8, 1400), peer6); err != nil {
		t.Fatal(err)
	}
	var ie *icmp.Error
	if err := e.Err(); !errors.As(err, &ie) || ie.Seq != 8 || ie.MTU != 1280 {
		t.Errorf("error %v", err)
	}
	// An ICMPv4 echo reply is not ours.
	v4 := echo(e.ID(), 1, "x")
	v4[0] = byte(wire.ICMPv4EchoReply)
	if p.HandlePacket(proto.PacketInfo{Src: peer6, Dst: local6}, buf.FromBytes(v4)) == proto.Consumed {
		t.Errorf("ICMPv4 echo reply taken")
	}
	var infos []proto.SocketInfo
	p.Sockets(func(i proto.SocketInfo) { infos = append(infos, i) })
	if len(infos) != 1 || infos[0].Proto != "icmp6" {
		t.Errorf("sockets %+v", infos)
	}
}
