package tcp

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ustack/buf"
	"ustack/internal/clock"
	"ustack/internal/seqnum"
	"ustack/link"
	"ustack/proto"
	"ustack/proto/prototest"
	"ustack/wire"
)

// A fake network for the protocol's tests: routes everything, records
// every segment sent, and lets a test inject segments as if from peers.

var (
	localIP  = netip.MustParseAddr("10.0.0.1")
	localIP2 = netip.MustParseAddr("10.0.0.2")
	peerIP   = netip.MustParseAddr("10.0.0.9")
)

type sentSeg struct {
	src, dst netip.AddrPort
	seq, ack seqnum.Value
	flags    wire.TCPFlags
	wnd      uint16
	opts     wire.TCPOptions
	payload  []byte
	partial  bool // checksum left to the link
}

type fakeNet struct {
	prototest.Groups
	mu      sync.Mutex
	local   map[netip.Addr]bool
	caps    link.Capabilities
	mtu     int
	noRoute bool
	sent    []sentSeg
	t       testing.TB
}

func newFakeNet(t testing.TB) *fakeNet {
	return &fakeNet{t: t, mtu: 1500, local: map[netip.Addr]bool{localIP: true, localIP2: true}}
}

func (n *fakeNet) Route(dst, src netip.Addr, ifIndex int) (proto.Route, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.noRoute {
		return proto.Route{}, proto.ErrNoRoute
	}
	if !src.IsValid() {
		src = localIP
	}
	return proto.Route{Src: src, Dst: dst, NextHop: dst, IfIndex: 1, MTU: n.mtu, Caps: n.caps,
		Local: n.local[dst], Broadcast: dst == limitedBroadcast, Multicast: dst.IsMulticast()}, nil
}

func (n *fakeNet) WritePacket(r proto.Route, p wire.IPProtocol, wp proto.WriteParams, pkt *buf.Packet) error {
	partial := pkt.Offload.NeedsCsum
	b := pkt.ToBytes()
	pkt.Release()
	t, err := wire.ParseTCP(b)
	if err != nil {
		n.t.Errorf("sent a bad TCP header: %v", err)
		return nil
	}
	if !partial && !t.ChecksumValid(wire.PseudoHeaderChecksum(wire.IPProtoTCP, r.Src, r.Dst, len(b))) {
		n.t.Errorf("sent a segment with a bad checksum")
	}
	if partial && t.Checksum() != wire.PseudoHeaderChecksum(wire.IPProtoTCP, r.Src, r.Dst, len(b)) {
		n.t.Errorf("partial checksum field %#x is not the pseudo-header sum", t.Checksum())
	}
	opts, err := t.ParseOptions()
	if err != nil {
		n.t.Errorf("sent bad options: %v", err)
	}
	s := sentSeg{src: netip.AddrPortFrom(r.Src, t.SrcPort()), dst: netip.AddrPortFrom(r.Dst, t.DstPort()),
		seq: seqnum.Value(t.Seq()), ack: seqnum.Value(t.Ack()), flags: t.Flags(), wnd: t.Window(),
		opts: opts, payload: append([]byte(nil), t.Payload()...), partial: partial}
	n.mu.Lock()
	n.sent = append(n.sent, s)
	n.mu.Unlock()
	return nil
}

func (n *fakeNet) LocalAddr(a netip.Addr) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.local[a]
}

func (n *fakeNet) MaxHeaderLen() int { return 40 }

// take returns and forgets the segments sent so far.
func (n *fakeNet) take() []sentSeg {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := n.sent
	n.sent = nil
	return s
}

// takeOne returns the only segment sent since the last take.
func (n *fakeNet) takeOne(t testing.TB) sentSeg {
	t.Helper()
	s := n.take()
	if len(s) != 1 {
		t.Fatalf("sent %d segments, want 1: %+v", len(s), s)
	}
	return s[0]
}

// env is a protocol on a fake network and a fake clock.
type env struct {
	p   *Protocol
	net *fakeNet
	clk *clock.Fake
	sys *proto.Sysctl
	// first, last back net.inet.ip.portrange.* (UDP registers them in a
	// stack).
	first, last *atomic.Int64
}

func newEnv(t testing.TB) *env {
	e := &env{net: newFakeNet(t), clk: clock.NewFake(time.Unix(1e9, 0)), sys: new(proto.Sysctl)}
	e.first, e.last = new(atomic.Int64), new(atomic.Int64)
	e.first.Store(defaultPortFirst)
	e.last.Store(defaultPortLast)
	e.sys.Register(proto.IntTunable("net.inet.ip.portrange.first", "", e.first, 1, 65535))
	e.sys.Register(proto.IntTunable("net.inet.ip.portrange.last", "", e.last, 1, 65535))
	e.p = New(e.net, e.clk, e.sys, nil)
	return e
}

// seg is a segment to inject.
type seg struct {
	src, dst netip.AddrPort
	seq, ack seqnum.Value
	flags    wire.TCPFlags
	wnd      uint16
	opts     wire.TCPOptions
	payload  []byte
}

// packet encodes s with a valid checksum.
func (s seg) packet() *buf.Packet {
	f := wire.TCPFields{SrcPort: s.src.Port(), DstPort: s.dst.Port(), Seq: uint32(s.seq),
		Ack: uint32(s.ack), Flags: s.flags, Window: s.wnd, Options: s.opts}
	if f.Window == 0 && s.flags&wire.TCPFlagRST == 0 {
		f.Window = 65535
	}
	b := make([]byte, f.Len()+len(s.payload))
	f.Encode(b)
	copy(b[f.Len():], s.payload)
	wire.TCP(b).UpdateChecksum(wire.PseudoHeaderChecksum(wire.IPProtoTCP, s.src.Addr(), s.dst.Addr(), len(b)))
	return buf.FromBytes(b)
}

func (s seg) info() proto.PacketInfo {
	return proto.PacketInfo{Src: s.src.Addr(), Dst: s.dst.Addr(), Proto: wire.IPProtoTCP, IfIndex: 1, TTL: 64}
}

// inject hands s to the protocol.
func (e *env) inject(t testing.TB, s seg) {
	t.Helper()
	if v := e.p.HandlePacket(s.info(), s.packet()); v != proto.Consumed {
		t.Fatalf("HandlePacket = %v, want Consumed", v)
	}
}

// injectRaw hands raw bytes to the protocol.
func (e *env) injectRaw(t testing.TB, info proto.PacketInfo, b []byte) {
	t.Helper()
	if v := e.p.HandlePacket(info, buf.FromBytes(b)); v != proto.Consumed {
		t.Fatalf("HandlePacket = %v, want Consumed", v)
	}
}

// stat reads a counter by its VisitStats name.
func (e *env) stat(name string) uint64 {
	var v uint64
	found := false
	e.p.VisitStats(func(n string, x uint64) {
		if n == name {
			v, found = x, true
		}
	})
	if !found && len(name) > 9 && name[:9] == "tcp.drop." {
		return 0 // drops are listed only when non-zero
	}
	if !found {
		panic("no counter " + name)
	}
	return v
}

// handshake runs a passive open on l from peer: SYN, SYN-ACK, ACK. It
// returns the peer's next sequence number and ours.
func (e *env) handshake(t testing.TB, l *Listener, peer netip.AddrPort, irs seqnum.Value) (rcvNxt, sndNxt seqnum.Value) {
	t.Helper()
	e.net.take()
	e.inject(t, seg{src: peer, dst: l.Addr(), seq: irs, flags: wire.TCPFlagSYN,
		opts: wire.TCPOptions{MSS: 1460, HasMSS: true}})
	sa := e.net.takeOne(t)
	if sa.flags != wire.TCPFlagSYN|wire.TCPFlagACK || sa.ack != irs+1 {
		t.Fatalf("answer to SYN: %v ack %d, want SYN|ACK ack %d", sa.flags, sa.ack, irs+1)
	}
	e.inject(t, seg{src: peer, dst: l.Addr(), seq: irs + 1, ack: sa.seq + 1, flags: wire.TCPFlagACK})
	return irs + 1, sa.seq + 1
}
