package icmp_test

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"ustack/proto/prototest"

	"ustack/buf"
	"ustack/proto"
	"ustack/transport/icmp"
	"ustack/wire"
)

var (
	local       = netip.MustParseAddr("10.0.0.1")
	peer        = netip.MustParseAddr("10.0.0.2")
	unreachable = netip.MustParseAddr("10.0.0.9") // a router answers "host unreachable"
	bcast       = netip.MustParseAddr("10.0.0.255")
)

// echoNet is a proto.Network whose far side answers echo requests, as a
// peer's network/ipv4 would, and reports host unreachable for 10.0.0.9.
type echoNet struct {
	prototest.Groups
	p *icmp.Protocol

	mu   sync.Mutex
	sent [][]byte
	wps  []proto.WriteParams
}

func newEcho(t *testing.T) (*echoNet, *icmp.Protocol) {
	n := &echoNet{}
	n.p = icmp.New(n, nil)
	return n, n.p
}

func (n *echoNet) MaxHeaderLen() int { return 34 }

func (n *echoNet) Route(dst, src netip.Addr, _ int) (proto.Route, error) {
	if netip.MustParsePrefix("192.0.2.0/24").Contains(dst) {
		return proto.Route{}, proto.ErrNoRoute
	}
	if !src.IsValid() {
		src = local
	}
	return proto.Route{Src: src, Dst: dst, NextHop: dst, IfIndex: 1, MTU: 1500, Broadcast: dst == bcast}, nil
}

func (n *echoNet) WritePacket(r proto.Route, p wire.IPProtocol, wp proto.WriteParams, pkt *buf.Packet) error {
	b := pkt.ToBytes()
	pkt.Release()
	n.mu.Lock()
	n.sent = append(n.sent, b)
	n.wps = append(n.wps, wp)
	n.mu.Unlock()
	if r.Dst == unreachable {
		n.p.HandleError(&proto.ICMPError{Kind: proto.ErrHostUnreachable, Type: 3, Code: 1,
			From: netip.MustParseAddr("10.0.0.254"), Src: r.Src, Dst: r.Dst, Proto: p, Quote: b[:8]})
		return nil
	}
	reply := append([]byte(nil), b...)
	m := wire.ICMPv4(reply)
	m.SetType(wire.ICMPv4EchoReply)
	m.UpdateChecksum()
	rp := buf.FromBytes(reply)
	if n.p.HandlePacket(proto.PacketInfo{Src: r.Dst, Dst: r.Src, Proto: p, TTL: 64}, rp) != proto.Consumed {
		rp.Release()
	}
	return nil
}

func echo(id, seq uint16, data string) []byte {
	b := make([]byte, 8+len(data))
	f := wire.ICMPv4Fields{Type: wire.ICMPv4Echo, Rest: wire.EchoRest(id, seq)}
	f.Encode(b)
	copy(b[8:], data)
	return b
}

func open(t *testing.T, p *icmp.Protocol, a netip.Addr, id uint16) *icmp.Endpoint {
	t.Helper()
	e, err := p.Open(a, id)
	if err != nil {
		t.Fatalf("Open(%v, %d): %v", a, id, err)
	}
	t.Cleanup(e.Close)
	return e
}

func TestEchoRoundTrip(t *testing.T) {
	n, p := newEcho(t)
	e := open(t, p, netip.Addr{}, 0)
	if e.ID() == 0 || !e.LocalAddr().IsUnspecified() {
		t.Fatalf("ID %d, LocalAddr %v", e.ID(), e.LocalAddr())
	}
	msg := echo(0xbeef, 7, "abcdefgh")
	if k, err := e.WriteTo(msg, peer); k != len(msg) || err != nil {
		t.Fatalf("WriteTo = %d, %v", k, err)
	}
	if binary.BigEndian.Uint16(msg[4:]) != 0xbeef {
		t.Error("WriteTo modified the caller's message")
	}
	sent := wire.ICMPv4(n.sent[0])
	if sent.ID() != e.ID() || sent.Seq() != 7 || !sent.ChecksumValid() {
		t.Errorf("sent id %d seq %d checksum ok %v; want id %d seq 7 valid", sent.ID(), sent.Seq(), sent.ChecksumValid(), e.ID())
	}
	select {
	case <-e.Readable():
	default:
		t.Fatal("Readable not signalled")
	}
	pkt, from, ok := e.Recv()
	if !ok {
		t.Fatal("no reply")
	}
	defer pkt.Release()
	m := wire.ICMPv4(pkt.ToBytes())
	if from != peer || m.Type() != wire.ICMPv4EchoReply || m.ID() != e.ID() || m.Seq() != 7 || string(m.Payload()) != "abcdefgh" {
		t.Errorf("reply %x from %v", []byte(m), from)
	}
	if _, _, ok := e.Recv(); ok {
		t.Error("a second reply")
	}
	if got := p.Stats().Delivered.Load(); got != 1 {
		t.Errorf("delivered = %d", got)
	}
}

func TestIdentifiers(t *testing.T) {
	_, p := newEcho(t)
	seen := map[uint16]bool{}
	for range 500 {
		e := open(t, p, netip.Addr{}, 0)
		if e.ID() == 0 || seen[e.ID()] {
			t.Fatalf("identifier %d zero or reused", e.ID())
		}
		seen[e.ID()] = true
	}
	open(t, p, local, 7)
	if _, err := p.Open(local, 7); !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("same id and address: %v, want EADDRINUSE", err)
	}
	if _, err := p.Open(netip.IPv4Unspecified(), 7); !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("same id, wildcard: %v, want EADDRINUSE", err)
	}
	open(t, p, peer, 7) // another address
}

func TestDemux(t *testing.T) {
	_, p := newEcho(t)
	a := open(t, p, local, 100)
	wild := open(t, p, netip.Addr{}, 200)
	deliver := func(dst netip.Addr, typ wire.ICMPv4Type, id uint16) proto.Verdict {
		b := echo(id, 1, "x")
		wire.ICMPv4(b).SetType(typ)
		pkt := buf.FromBytes(b)
		v := p.HandlePacket(proto.PacketInfo{Src: peer, Dst: dst, Proto: wire.IPProtoICMP}, pkt)
		if v != proto.Consumed {
			pkt.Release()
		}
		return v
	}
	tests := []struct {
		name string
		dst  netip.Addr
		typ  wire.ICMPv4Type
		id   uint16
		want proto.Verdict
		to   *icmp.Endpoint
	}{
		{"bound", local, wire.ICMPv4EchoReply, 100, proto.Consumed, a},
		{"bound, other address", peer, wire.ICMPv4EchoReply, 100, proto.NoEndpoint, nil},
		{"wildcard", peer, wire.ICMPv4EchoReply, 200, proto.Consumed, wild},
		{"unknown id", local, wire.ICMPv4EchoReply, 300, proto.NoEndpoint, nil},
		{"not a reply", local, wire.ICMPv4Echo, 100, proto.NoEndpoint, nil},
		{"timestamp reply", local, 14, 100, proto.NoEndpoint, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if v := deliver(tt.dst, tt.typ, tt.id); v != tt.want {
				t.Fatalf("verdict %v, want %v", v, tt.want)
			}
			for _, e := range []*icmp.Endpoint{a, wild} {
				pkt, _, ok := e.Recv()
				if ok {
					pkt.Release()
				}
				if ok != (e == tt.to) {
					t.Errorf("endpoint %d received: %v", e.ID(), ok)
				}
			}
		})
	}
}

func TestWriteErrors(t *testing.T) {
	_, p := newEcho(t)
	e := open(t, p, netip.Addr{}, 0)
	reply := echo(1, 1, "")
	reply[0] = byte(wire.ICMPv4EchoReply)
	coded := echo(1, 1, "")
	coded[1] = 1
	tests := []struct {
		name string
		msg  []byte
		dst  netip.Addr
		want error
	}{
		{"short", echo(1, 1, "")[:7], peer, syscall.EINVAL},
		{"not a request", reply, peer, syscall.EINVAL},
		{"code", coded, peer, syscall.EINVAL},
		{"too big", echo(1, 1, string(make([]byte, 65515-7))), peer, syscall.EMSGSIZE},
		{"no destination", echo(1, 1, ""), netip.Addr{}, syscall.EDESTADDRREQ},
		{"no route", echo(1, 1, ""), netip.MustParseAddr("192.0.2.1"), syscall.ENETUNREACH},
		{"broadcast", echo(1, 1, ""), bcast, syscall.EACCES},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n, err := e.WriteTo(tt.msg, tt.dst); n != 0 || !errors.Is(err, tt.want) {
				t.Errorf("WriteTo = %d, %v; want %v", n, err, tt.want)
			}
		})
	}
	e.SetBroadcast(true)
	if _, err := e.WriteTo(echo(1, 1, ""), bcast); err != nil {
		t.Errorf("broadcast after SetBroadcast: %v", err)
	}
	e.Close()
	if _, err := e.WriteTo(echo(1, 1, ""), peer); !errors.Is(err, net.ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}

func TestErrorAndTTL(t *testing.T) {
	n, p := newEcho(t)
	e := open(t, p, netip.Addr{}, 0)
	e.SetTTL(3)
	if _, err := e.WriteTo(echo(0, 42, "x"), unreachable); err != nil {
		t.Fatal(err)
	}
	if n.wps[0].TTL != 3 {
		t.Errorf("TTL %d, want 3", n.wps[0].TTL)
	}
	<-e.Readable()
	err := e.Err()
	var ie *icmp.Error
	if !errors.As(err, &ie) || !errors.Is(err, syscall.EHOSTUNREACH) {
		t.Fatalf("Err = %v, want an *icmp.Error for EHOSTUNREACH", err)
	}
	if ie.Seq != 42 || ie.Dst != unreachable || ie.From != netip.MustParseAddr("10.0.0.254") {
		t.Errorf("error %+v", ie)
	}
	if e.Err() != nil {
		t.Error("Err not cleared")
	}
	// Errors quoting another identifier are not ours.
	q := echo(e.ID()+1, 1, "")
	p.HandleError(&proto.ICMPError{Kind: proto.ErrHostUnreachable, Src: local, Dst: peer, Quote: q})
	if err := e.Err(); err != nil {
		t.Errorf("Err = %v for another identifier", err)
	}
}

func TestQueueFull(t *testing.T) {
	_, p := newEcho(t)
	e := open(t, p, netip.Addr{}, 0)
	e.SetRecvBuffer(20)
	for i := range 3 {
		e.WriteTo(echo(0, uint16(i), "0123456789ab"), peer) // 20-byte replies
	}
	if got := p.Stats().Dropped(proto.DropQueueFull); got != 2 {
		t.Errorf("queue_full = %d, want 2", got)
	}
	var infos []proto.SocketInfo
	p.Sockets(func(in proto.SocketInfo) { infos = append(infos, in) })
	if len(infos) != 1 || infos[0].RecvQ != 20 || infos[0].Local.Port() != e.ID() {
		t.Errorf("Sockets = %+v", infos)
	}
}

func (n *echoNet) LocalAddr(a netip.Addr) bool {
	return netip.MustParsePrefix("10.0.0.0/24").Contains(a) || a.IsLoopback()
}
