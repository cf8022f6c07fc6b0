package tcp

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"ustack/buf"
	"ustack/internal/clock"
	"ustack/link"
	"ustack/link/offload"
	"ustack/proto"
	"ustack/proto/prototest"
	"ustack/wire"
)

// simNet joins TCP stacks in memory on one fake clock: each packet takes
// a one-way delay and, by a seeded generator, may be lost, duplicated,
// delayed more (reordered) or corrupted. Large segments are cut and
// partial checksums finished as a link would do it.
type simNet struct {
	clk    *clock.Fake
	rng    *rand.Rand
	stacks map[netip.Addr]*Protocol
	caps   link.Capabilities
	mtu    int

	delay    time.Duration // one way
	loss     float64
	dup      float64
	reorder  float64       // probability of an extra delay
	extra    time.Duration // the most extra delay of a reordered packet
	corrupt  float64
	dropFunc func(b []byte) bool // extra drop rule (tests)
	tune     func(p *Protocol)   // applied to each new stack

	sent, lost, duped, reordered, corrupted, tooBig int
}

type simEnd struct {
	prototest.Groups
	n    *simNet
	addr netip.Addr
}

func newSimNet(seed uint64) *simNet {
	return &simNet{clk: clock.NewFake(time.Unix(1e9, 0)), rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b9)),
		stacks: map[netip.Addr]*Protocol{}, mtu: 1500, delay: 5 * time.Millisecond}
}

func (n *simNet) stack(addr netip.Addr) *Protocol {
	p := New(&simEnd{n: n, addr: addr}, n.clk, nil, nil)
	if n.tune != nil {
		n.tune(p)
	}
	n.stacks[addr] = p
	return p
}

func (e *simEnd) Route(dst, src netip.Addr, _ int) (proto.Route, error) {
	if _, ok := e.n.stacks[dst]; !ok {
		return proto.Route{}, proto.ErrNoRoute
	}
	return proto.Route{Src: e.addr, Dst: dst, NextHop: dst, IfIndex: 1, MTU: e.n.mtu, Caps: e.n.caps}, nil
}

func (e *simEnd) LocalAddr(a netip.Addr) bool { return a == e.addr }
func (e *simEnd) MaxHeaderLen() int           { return 14 + wire.IPv4MinHeaderLen }

func (e *simEnd) WritePacket(r proto.Route, p wire.IPProtocol, wp proto.WriteParams, pkt *buf.Packet) error {
	n := e.n
	var segs []*buf.Packet
	if pkt.Offload.GSO != buf.GSONone {
		ip := wire.IPv4Fields{TotalLen: wire.IPv4MinHeaderLen + pkt.Len(), TTL: 64, Protocol: p, Src: r.Src, Dst: r.Dst}
		ip.Encode(pkt.Prepend(wire.IPv4MinHeaderLen))
		wire.IPv4(pkt.Pullup(wire.IPv4MinHeaderLen)).UpdateChecksum()
		var err error
		if segs, err = offload.Segment(pkt, nil); err != nil {
			return err
		}
		for _, s := range segs {
			s.TrimFront(wire.IPv4MinHeaderLen)
		}
	} else {
		if err := offload.Complete(pkt); err != nil {
			pkt.Release()
			return err
		}
		segs = []*buf.Packet{pkt}
	}
	dst := n.stacks[r.Dst]
	for _, s := range segs {
		b := s.ToBytes()
		s.Release()
		n.sent++
		if wire.IPv4MinHeaderLen+len(b) > n.mtu {
			// A router on the way: fragmentation needed (RFC 1191).
			n.tooBig++
			src := n.stacks[r.Src]
			e := &proto.ICMPError{Kind: proto.ErrFragNeeded, Type: 3, Code: 4, MTU: n.mtu,
				From: r.Dst, Src: r.Src, Dst: r.Dst, Proto: p, Quote: b[:8]}
			n.clk.AfterFunc(n.delay/2, func() { src.HandleError(e) })
			continue
		}
		if n.dropFunc != nil && n.dropFunc(b) {
			n.lost++
			continue
		}
		if n.rng.Float64() < n.loss {
			n.lost++
			continue
		}
		copies := 1
		if n.rng.Float64() < n.dup {
			copies = 2
			n.duped++
		}
		for range copies {
			d := n.delay
			if n.rng.Float64() < n.reorder {
				d += time.Duration(n.rng.Int64N(int64(n.extra))) + 1
				n.reordered++
			}
			c := b
			if n.rng.Float64() < n.corrupt {
				c = bytes.Clone(b)
				c[n.rng.IntN(len(c))] ^= byte(1 + n.rng.IntN(255))
				n.corrupted++
			}
			info := proto.PacketInfo{Src: r.Src, Dst: r.Dst, Proto: p, IfIndex: 1, TTL: 64}
			n.clk.AfterFunc(d, func() { dst.HandlePacket(info, buf.FromBytes(c)) })
		}
	}
	return nil
}

// stream writes a seeded pseudo-random byte stream to a connection and
// hashes what it wrote; sink reads one and hashes what it read.
type stream struct {
	c       *Conn
	rng     *rand.ChaCha8
	left    int
	buf     []byte
	pending []byte
	h       hash.Hash
	closed  bool
}

func newStream(c *Conn, n int, seed byte) *stream {
	var s [32]byte
	s[0] = seed
	return &stream{c: c, rng: rand.NewChaCha8(s), left: n, buf: make([]byte, 48<<10), h: sha256.New()}
}

// pump writes what the connection takes; reports progress.
func (s *stream) pump(t *testing.T) bool {
	progress := false
	for {
		if len(s.pending) == 0 {
			if s.left == 0 {
				if !s.closed {
					if err := s.c.CloseWrite(); err != nil {
						t.Fatalf("CloseWrite: %v", err)
					}
					s.closed = true
					progress = true
				}
				return progress
			}
			k := min(s.left, len(s.buf))
			s.rng.Read(s.buf[:k])
			s.h.Write(s.buf[:k])
			s.left -= k
			s.pending = s.buf[:k]
		}
		n, err := s.c.Write(s.pending)
		s.pending = s.pending[n:]
		if n > 0 {
			progress = true
		}
		if errors.Is(err, ErrWouldBlock) {
			return progress
		}
		if err != nil {
			t.Fatalf("Write: %v\n%s", err, infoLine("w", s.c))
		}
	}
}

type sink struct {
	c   *Conn
	h   hash.Hash
	n   int
	eof bool
	buf []byte
}

func newSink(c *Conn) *sink { return &sink{c: c, h: sha256.New(), buf: make([]byte, 32<<10)} }

func (s *sink) pump(t *testing.T) bool {
	progress := false
	for !s.eof {
		n, err := s.c.Read(s.buf)
		s.h.Write(s.buf[:n])
		s.n += n
		if n > 0 {
			progress = true
		}
		switch {
		case err == io.EOF:
			s.eof, progress = true, true
		case errors.Is(err, ErrWouldBlock):
			return progress
		case err != nil:
			t.Fatalf("Read: %v", err)
		}
	}
	return progress
}

// simPair is a connection between two stacks: a dials b.
type simPair struct {
	n      *simNet
	pa, pb *Protocol
	a, b   *Conn
}

var (
	simA = netip.MustParseAddr("10.0.0.1")
	simB = netip.MustParseAddr("10.0.0.2")
)

func newSimPair(t *testing.T, n *simNet, oa, ob Options) *simPair {
	t.Helper()
	sp := &simPair{n: n, pa: n.stack(simA), pb: n.stack(simB)}
	l, err := sp.pb.Listen(netip.AddrPortFrom(simB, 80), 16, ob)
	if err != nil {
		t.Fatal(err)
	}
	sp.a, err = sp.pa.Dial(netip.AddrPort{}, netip.AddrPortFrom(simB, 80), oa)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 1000 && sp.b == nil; i++ {
		if c, err := l.Accept(); err == nil {
			sp.b = c
			break
		}
		d, ok := n.clk.Next()
		if !ok {
			break
		}
		n.clk.Advance(d)
	}
	if sp.b == nil || !sp.a.Connected() {
		t.Fatalf("no connection: a %v, b %v", sp.a.Info().State, sp.b)
	}
	l.Close()
	return sp
}

// run moves the clock from event to event, pumping the applications
// after each, until done reports true or limit of virtual time passes.
func (n *simNet) run(t *testing.T, limit time.Duration, pump func() bool, done func() bool, diag func() string) {
	t.Helper()
	start := n.clk.Now()
	for !done() {
		pump()
		if done() {
			return
		}
		d, ok := n.clk.Next()
		if !ok {
			if pump() {
				continue
			}
			t.Fatalf("stuck at %v: no timer armed\n%s", n.clk.Now().Sub(start), diag())
		}
		n.clk.Advance(d)
		if n.clk.Now().Sub(start) > limit {
			t.Fatalf("not done after %v of virtual time\n%s", limit, diag())
		}
	}
}

func infoLine(name string, c *Conn) string {
	in := c.Info()
	c.mu.Lock()
	var segs []txSeg // none before the connection sent data
	if c.flight != nil {
		segs = c.sb.segs
	}
	internals := fmt.Sprintf("   una=%d nxt=%d rcvnxt=%d rcvadv=%d tsrecent=%d tsnow=%d segs=%d backoff=%d state=%v\n",
		c.sndUna, c.sndNxt, c.rcvNxt, c.rcvAdv, c.tsRecent, c.tsNow(c.p.clk.Now()), len(segs), c.rtt.backoff, c.st)
	for i, s := range segs {
		if i < 6 {
			internals += fmt.Sprintf("     seg %d-%d flags=%b xmit=%v\n", s.start, s.end, s.flags, s.xmit.Sub(time.Unix(1e9, 0)))
		}
	}
	c.mu.Unlock()
	return fmt.Sprintf("%s: %v ca=%s cwnd=%d ssthresh=%d inflight=%d unacked=%d sacked=%d lost=%d retrans=%d notsent=%d sndwnd=%d rcvwnd=%d rto=%v srtt=%v totalretrans=%d acked=%d rcvd=%d recvq=%d oooq=%d\n",
		name, in.State, in.CAState, in.CWnd, in.SSThresh, in.InFlight, in.Unacked, in.SACKed, in.Lost, in.Retrans,
		in.NotSent, in.SndWnd, in.RcvWnd, in.RTO, in.SRTT, in.TotalRetrans, in.BytesAcked, in.BytesReceived, in.RecvQ, in.OOOQ) + internals
}

// transfer sends size bytes each way over sp and checks that both
// arrive intact, then closes both ends.
func (sp *simPair) transfer(t *testing.T, size int, limit time.Duration) {
	t.Helper()
	wa, wb := newStream(sp.a, size, 1), newStream(sp.b, size, 2)
	ra, rb := newSink(sp.a), newSink(sp.b)
	pump := func() bool {
		p := wa.pump(t)
		p = wb.pump(t) || p
		p = ra.pump(t) || p
		p = rb.pump(t) || p
		return p
	}
	diag := func() string {
		return fmt.Sprintf("a->b %d/%d, b->a %d/%d; net: sent %d lost %d dup %d reordered %d corrupted %d\n",
			rb.n, size, ra.n, size, sp.n.sent, sp.n.lost, sp.n.duped, sp.n.reordered, sp.n.corrupted) +
			infoLine("a", sp.a) + infoLine("b", sp.b)
	}
	sp.n.run(t, limit, pump, func() bool { return ra.eof && rb.eof }, diag)
	if rb.n != size || ra.n != size {
		t.Fatalf("received %d and %d bytes, want %d\n%s", rb.n, ra.n, size, diag())
	}
	if !bytes.Equal(wa.h.Sum(nil), rb.h.Sum(nil)) || !bytes.Equal(wb.h.Sum(nil), ra.h.Sum(nil)) {
		t.Fatalf("sha256 differs\n%s", diag())
	}
	sp.a.Close()
	sp.b.Close()
	sp.n.run(t, 10*time.Minute, func() bool { return false }, func() bool {
		return sp.a.state() == StateClosed && sp.b.state() == StateClosed
	}, diag)
	if testing.Verbose() {
		t.Logf("virtual time %v; %s", sp.n.clk.Now().Sub(time.Unix(1e9, 0)), diag())
	}
}

func TestSimTransfer(t *testing.T) {
	const size = 10 << 20
	for _, tc := range []struct {
		name string
		set  func(n *simNet)
		caps link.Capabilities
		opts Options
		tune func(p *Protocol)
	}{
		{name: "clean", set: func(n *simNet) {}},
		{name: "clean-tso", set: func(n *simNet) {}, caps: link.CapTSO4 | link.CapTxChecksum},
		{name: "loss1", set: func(n *simNet) { n.loss = 0.01 }},
		{name: "loss5", set: func(n *simNet) { n.loss = 0.05 }, caps: link.CapTSO4 | link.CapTxChecksum},
		{name: "loss10", set: func(n *simNet) { n.loss = 0.10 }},
		{name: "reorder5", set: func(n *simNet) { n.reorder, n.extra = 0.05, 8*time.Millisecond }},
		{name: "dup1", set: func(n *simNet) { n.dup = 0.01 }},
		{name: "corrupt1", set: func(n *simNet) { n.corrupt = 0.01 }},
		{name: "mixed", set: func(n *simNet) {
			n.loss, n.reorder, n.extra, n.dup = 0.02, 0.05, 10*time.Millisecond, 0.01
		}},
		{name: "loss5-reno-nosack", set: func(n *simNet) { n.loss = 0.05 }, opts: Options{CongestionControl: "reno"},
			tune: func(p *Protocol) { p.tun.SACK.Store(false) }},
		{name: "loss5-nots", set: func(n *simNet) { n.loss = 0.05 },
			tune: func(p *Protocol) { p.tun.Timestamps.Store(false) }},
		{name: "pmtu", set: func(n *simNet) { n.mtu = 1200; n.loss = 0.01 }, caps: link.CapTSO4 | link.CapTxChecksum},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newSimNet(uint64(len(tc.name)) * 7919)
			n.caps = tc.caps
			n.tune = tc.tune
			sp := newSimPair(t, n, tc.opts, tc.opts)
			tc.set(n)
			sp.transfer(t, size, time.Hour)
			if tc.name == "clean" {
				// Receive-buffer auto-tuning opened the window well past
				// the initial buffer.
				for _, c := range []*Conn{sp.a, sp.b} {
					if in := c.Info(); in.RcvBuf < 4*DefaultRmemDefault || in.TotalRetrans != 0 {
						t.Errorf("RcvBuf %d, retransmissions %d", in.RcvBuf, in.TotalRetrans)
					}
				}
			}
		})
	}
}
