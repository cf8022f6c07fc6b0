package tcp

import (
	"errors"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"ustack/buf"
	"ustack/internal/seqnum"
	"ustack/link"
	"ustack/proto"
	"ustack/transport/tcp/cc"
	"ustack/wire"
)

// Engine tests of flow control and its timers: persist (RFC 9293
// §3.8.6.1), keep-alive (RFC 1122 §4.2.3.6), delayed ACKs (§3.8.6.3),
// Nagle (§3.7.4), windows (§3.8.6, RFC 7323 §2), large segments, GRO.

func TestPersistProbes(t *testing.T) {
	e, p := dialPeer(t, defPeer)
	p.send(window(0))
	p.write("hello")
	p.expectNone()
	// RTO 300 ms, then doubling (RFC 9293 §3.8.6.1: the persist timer
	// backs off like the retransmission timer).
	for _, d := range []time.Duration{300 * time.Millisecond, 600 * time.Millisecond, 1200 * time.Millisecond} {
		p.advance(d - time.Millisecond)
		p.expectNone()
		p.advance(time.Millisecond)
		p.expect(isFlags(fACK), seqIs(p.ack-1), noData())
		p.send(window(0)) // the peer answers: still closed
		p.take()
	}
	if e.stat("tcp.persist_probes") != 3 || p.c.state() != StateEstablished {
		t.Fatalf("persist_probes %d state %v", e.stat("tcp.persist_probes"), p.c.state())
	}
	// The window opens: the data goes at once.
	p.send(window(100))
	p.expect(payloadIs("hello"), seqIs(p.ack))
}

// TestSenderSWS: a window smaller than a segment and than half the
// largest window seen holds small segments back (RFC 9293 §3.8.6.2.1);
// the persist timer's override sends what fits.
func TestSenderSWS(t *testing.T) {
	_, p := dialPeer(t, peerOpts{mss: 1460, ws: -1, ts: true, sack: true})
	p.send(window(3))
	p.write(strings.Repeat("a", 1000))
	p.expectNone()
	p.advance(300 * time.Millisecond)
	p.expect(payloadIs("aaa"))
}

func TestKeepalive(t *testing.T) {
	e, p := dialPeer(t, peerOpts{mss: 1460, ws: 7, ts: true, sack: true,
		options: Options{KeepAlive: true, KeepAliveIdle: 10 * time.Second, KeepAliveInterval: time.Second, KeepAliveCount: 3}})
	p.advance(10*time.Second - time.Millisecond)
	p.expectNone()
	p.advance(time.Millisecond)
	p.expect(isFlags(fACK), seqIs(p.ack-1), noData())
	// An answer resets the count and the idle time.
	p.send()
	p.advance(time.Second)
	p.expectNone()
	p.advance(9 * time.Second)
	p.expect(seqIs(p.ack - 1))
	p.advance(time.Second)
	p.expect(seqIs(p.ack - 1))
	p.advance(time.Second)
	p.expect(seqIs(p.ack - 1))
	p.advance(time.Second) // the third went unanswered
	p.expect(isFlags(fRST))
	if p.c.state() != StateClosed || !errors.Is(p.c.Err(), syscall.ETIMEDOUT) {
		t.Fatalf("state %v err %v", p.c.state(), p.c.Err())
	}
	if e.stat("tcp.keepalive_probes") != 4 || e.stat("tcp.keepalive_drops") != 1 {
		t.Errorf("probes %d drops %d", e.stat("tcp.keepalive_probes"), e.stat("tcp.keepalive_drops"))
	}
}

func TestKeepaliveDefaults(t *testing.T) {
	_, p := dialPeer(t, defPeer)
	p.c.SetKeepAlive(true)
	p.advance(DefaultKeepIdle - time.Second)
	p.expectNone()
	p.advance(time.Second)
	p.expect(seqIs(p.ack - 1))
	p.advance(DefaultKeepIntvl)
	p.expect(seqIs(p.ack - 1))
}

// drainQuickAcks ends the quick-ACK mode that follows the handshake:
// data is acknowledged at once for 15 more segments (the ACK of the
// SYN-ACK was the first of 16).
func (p *tpeer) drainQuickAcks() {
	p.t.Helper()
	for range quickAckSegments - 1 {
		p.send(data("q"))
		p.expect(isFlags(fACK), ackIs(p.seq))
	}
	p.send(data("q"))
	p.expectNone()
	p.advance(MaxDelAck)
	p.expect(isFlags(fACK), ackIs(p.seq))
	p.read()
}

func TestDelayedACK(t *testing.T) {
	e, p := dialPeer(t, defPeer)
	p.drainQuickAcks()
	p.send(data("one"))
	p.advance(DefaultDelAck - time.Millisecond)
	p.expectNone()
	p.advance(time.Millisecond)
	p.expect(isFlags(fACK), ackIs(p.seq))
	if e.stat("tcp.delayed_acks") != 2 {
		t.Errorf("delayed_acks %d", e.stat("tcp.delayed_acks"))
	}
	// Every second full-sized segment is acknowledged at once (RFC 5681
	// §4.2).
	p.send(bytesN(mss))
	p.expectNone()
	p.send(bytesN(mss))
	p.expect(isFlags(fACK), ackIs(p.seq))
	// A delayed ACK rides on data when there is some.
	p.send(data("x"))
	p.write("reply")
	p.expect(payloadIs("reply"), ackIs(p.seq))
	p.advance(time.Second)
	for _, s := range p.take() {
		if len(s.payload) == 0 {
			t.Fatalf("a bare ACK after the piggybacked one: %s", fmtSeg(s))
		}
	}
}

func TestDelayedACKTunable(t *testing.T) {
	e, p := dialPeer(t, defPeer)
	if err := e.sys.Set("net.inet.tcp.delack", "100ms"); err != nil {
		t.Fatal(err)
	}
	if err := e.sys.Set("net.inet.tcp.delack", "500ms"); err == nil {
		t.Fatal("a delayed-ACK timeout of 500 ms was accepted")
	}
	p.drainQuickAcks()
	p.send(data("one"))
	p.advance(99 * time.Millisecond)
	p.expectNone()
	p.advance(time.Millisecond)
	p.expect(isFlags(fACK))
}

// TestQuickACKOnHole: out-of-order data, and the segment that fills the
// hole, are acknowledged at once.
func TestQuickACKOnHole(t *testing.T) {
	_, p := dialPeer(t, defPeer)
	p.drainQuickAcks()
	hole := p.seq
	p.seq += 10
	p.send(data("later"))
	p.expect(isFlags(fACK), ackIs(hole), sackIs(hole+10, hole+15))
	p.seq = hole
	p.send(data("0123456789"))
	p.expect(isFlags(fACK), ackIs(hole+15), sackIs())
	if s, _ := p.read(); s != "0123456789later" {
		t.Fatalf("read %q", s)
	}
}

func TestNagle(t *testing.T) {
	_, p := dialPeer(t, defPeer)
	p.write("a")
	p.expect(payloadIs("a"))
	p.write("b")
	p.write("c")
	p.expectNone() // "a" is unacknowledged
	p.ack++
	p.send()
	p.expect(payloadIs("bc"))
	// A full segment goes regardless.
	p.write(strings.Repeat("f", mss))
	p.expect(dataLen(mss))
	// NoDelay sends small segments at once, and what Nagle held.
	p.write("d")
	p.expectNone()
	p.c.SetNoDelay(true)
	p.expect(payloadIs("d"))
	p.write("e")
	p.expect(payloadIs("e"))
}

func TestWindowScaling(t *testing.T) {
	e := newEnv(t)
	c, _ := e.p.Dial(netip.AddrPort{}, peerAddr, Options{})
	syn := e.net.takeOne(t)
	// rmem_max 6 MiB needs a shift of 7 (RFC 7323 §2.3); the SYN's own
	// window is not scaled.
	checkSeg(t, syn, wndIs(65535), func(s sentSeg) error {
		if s.opts.WScale != 7 {
			return errors.New("want wscale 7")
		}
		return nil
	})
	p := &tpeer{t: t, e: e, c: c, addr: peerAddr, local: c.LocalAddr(), seq: 1, tsval: 1, ts: true}
	p.ack = syn.seq + 1
	p.send(flags(fSYN|fACK), window(1000), func(s *seg) { s.opts = peerOpts{mss: 1460, ws: 3, ts: true}.wire(1, syn.opts.TSVal) })
	// The SYN-ACK's window is taken as is; later ones are shifted by 3.
	if w := c.Info().SndWnd; w != 1000 {
		t.Fatalf("send window %d after the SYN-ACK", w)
	}
	ack := p.expect(isFlags(fACK))
	if ack.wnd != uint16(DefaultRmemDefault>>7) {
		t.Fatalf("window field %d, want %d", ack.wnd, DefaultRmemDefault>>7)
	}
	p.send(window(1000))
	if w := c.Info().SndWnd; w != 8000 {
		t.Fatalf("send window %d, want 8000", w)
	}
	// Options.RecvBuffer bounds the shift to what the buffer needs.
	e2 := newEnv(t)
	e2.p.Dial(netip.AddrPort{}, peerAddr, Options{RecvBuffer: 4096})
	if s := e2.net.takeOne(t); s.opts.WScale != 0 || s.wnd != 4096 {
		t.Fatalf("SYN with RecvBuffer 4096: %s", fmtSeg(s))
	}
}

// TestZeroWindow: a full receive buffer advertises a zero window; a Read
// that frees enough opens it with a window update (RFC 9293 §3.8.6.2.2).
func TestZeroWindow(t *testing.T) {
	_, p := dialPeer(t, peerOpts{mss: 1460, ws: -1, ts: true, sack: true, options: Options{RecvBuffer: 4096}})
	p.send(bytesN(1448))
	p.send(bytesN(1448))
	p.send(bytesN(1200))
	out := p.take()
	if last := out[len(out)-1]; last.wnd != 0 || last.ack != p.seq {
		t.Fatalf("after 4096 bytes: %s", fmtSeg(last))
	}
	// More data is out of the window: dropped and acknowledged.
	p.send(data("more"))
	p.expect(ackIs(p.seq-4), wndIs(0))
	p.seq -= 4
	// Reading a little does not reopen it (silly window avoidance)...
	b := make([]byte, 1000)
	p.c.Read(b)
	p.expectNone()
	// ...reading half the buffer does.
	p.c.Read(b)
	p.expect(isFlags(fACK), wndIs(2000), ackIs(p.seq))
}

func TestSendBuffer(t *testing.T) {
	_, p := dialPeer(t, peerOpts{mss: 1460, ws: 7, ts: true, sack: true, options: Options{SendBuffer: 4096, NoDelay: true}})
	n, err := p.c.Write(make([]byte, 10000))
	if n != 4096 || err != nil {
		t.Fatalf("Write: %d %v", n, err)
	}
	if n, err := p.c.Write([]byte("x")); n != 0 || err != ErrWouldBlock {
		t.Fatalf("Write on a full buffer: %d %v", n, err)
	}
	out := p.take()
	signalled(p.c.Writable())
	p.ack = out[len(out)-1].seq + seqnum.Value(len(out[len(out)-1].payload))
	p.send()
	if !signalled(p.c.Writable()) {
		t.Fatal("Writable not signalled when the buffer drained")
	}
	if n, _ := p.c.Write(make([]byte, 10000)); n != 4096 {
		t.Fatalf("Write after the ACK: %d", n)
	}
}

// offloadNet records the offload state of what the engine sends.
type offloadNet struct {
	*fakeNet
	offloads []buf.Offload
}

func (n *offloadNet) WritePacket(r proto.Route, p wire.IPProtocol, wp proto.WriteParams, pkt *buf.Packet) error {
	n.offloads = append(n.offloads, pkt.Offload)
	return n.fakeNet.WritePacket(r, p, wp, pkt)
}

// TestLargeSegments: over a link with TSO the engine sends one large
// segment with the segment size and a partial checksum (virtio-net
// semantics) instead of many.
func TestLargeSegments(t *testing.T) {
	e := newEnv(t)
	e.net.caps = link.CapTSO4 | link.CapTxChecksum
	on := &offloadNet{fakeNet: e.net}
	e.p.net = on
	c, _ := e.p.Dial(netip.AddrPort{}, peerAddr, Options{})
	syn := e.net.takeOne(t)
	p := &tpeer{t: t, e: e, c: c, addr: peerAddr, local: c.LocalAddr(), seq: 1, tsval: 1, ts: true, sack: true, wnd: 65535}
	p.ack = syn.seq + 1
	p.send(flags(fSYN|fACK), func(s *seg) { s.opts = defPeer.wire(1, syn.opts.TSVal) })
	p.take()
	p.wnd = 65535 >> 7
	on.offloads = nil
	p.write(strings.Repeat("z", 10*mss))
	s := p.expect(dataLen(10 * mss))
	if !s.partial {
		t.Fatal("checksum not left to the link")
	}
	o := on.offloads[0]
	if o.GSO != buf.GSOTCPv4 || o.GSOSize != mss || !o.NeedsCsum || o.CsumStart != 0 || o.CsumOffset != 16 || o.HdrLen != 32 {
		t.Fatalf("offload %+v", o)
	}
}

// TestDeliverBatch: segments of one received batch are processed as they
// come, but the ACK they call for waits for the batch's end: four
// full-sized segments, which alone draw two ACKs or more (every second
// one, RFC 5681 §4.2; each one in quick-ACK mode), draw one ACK for all of
// them at the batch's last frame, or when the batch is flushed.
func TestDeliverBatch(t *testing.T) {
	e, p := dialPeer(t, defPeer)
	b := proto.GetBatch()
	want := ""
	for i := range 4 {
		chunk := strings.Repeat(string(rune('a'+i)), mss)
		want += chunk
		s := p.build(data(chunk))
		info := s.info()
		info.Batch = b
		b.SetLeft(3 - i)
		e.injectRaw(t, info, s.encode())
		p.seq = p.seq.Add(seqnum.Size(mss))
		if i < 3 {
			p.expectNone()
		}
	}
	// The last frame of the batch does what the batch deferred.
	p.expect(isFlags(fACK), ackIs(p.seq))
	b.Flush()
	proto.PutBatch(b)
	p.expectNone()

	// Cut short (a frame that is not the connection's ends the batch):
	// Flush does the deferred work.
	b = proto.GetBatch()
	for i := range 2 {
		s := p.build(data(strings.Repeat("x", mss)))
		info := s.info()
		info.Batch = b
		b.SetLeft(2 - i)
		e.injectRaw(t, info, s.encode())
		p.seq = p.seq.Add(seqnum.Size(mss))
	}
	p.expectNone()
	b.Flush()
	proto.PutBatch(b)
	p.expect(isFlags(fACK), ackIs(p.seq))
	want += strings.Repeat("x", 2*mss)
	if s, _ := p.read(); s != want {
		t.Fatalf("read %d bytes, want %d", len(s), len(want))
	}
	// Without a batch, the same four segments draw an ACK each (quick
	// ACKs at the start) or every second one: more than one.
	for i := range 4 {
		p.send(data(strings.Repeat(string(rune('e'+i)), mss)))
	}
	if n := len(p.take()); n < 2 {
		t.Errorf("%d ACKs for four segments outside a batch, want 2 or more", n)
	}
}

// TestBatchAnswersAtOnce: inside a batch, a segment that calls for an
// ACK out of the ordinary (here a challenge ACK, RFC 5961 §3.2) is answered
// at once, before the batch's later frames, as Linux answers it; only the
// ACKs for in-order data wait for the batch's end.
func TestBatchAnswersAtOnce(t *testing.T) {
	e, p := dialPeer(t, defPeer)
	b := proto.GetBatch()
	defer proto.PutBatch(b)
	s := p.build(flags(fRST), seqAt(p.seq+100))
	info := s.info()
	info.Batch = b
	b.SetLeft(5)
	e.injectRaw(t, info, s.encode())
	p.expect(isFlags(fACK), ackIs(p.seq), seqIs(p.ack))
	b.Flush()
	p.expectNone()
}

func TestInfoCounters(t *testing.T) {
	_, p := dialPeer(t, defPeer)
	p.write("hello")
	s := p.expect(payloadIs("hello"))
	p.advance(50 * time.Millisecond)
	p.ack = s.seq + 5
	p.send(data("world"))
	in := p.c.Info()
	if in.BytesAcked != 5 || in.BytesReceived != 5 || in.BytesSent != 5 || in.SegsOut < 3 || in.SegsIn < 2 ||
		in.CongestionControl != DefaultCongestionControl || in.Delivered != 5 {
		t.Fatalf("Info %+v", in)
	}
	if in.SRTT >= 100*time.Millisecond || in.MinRTT != 50*time.Millisecond {
		t.Fatalf("SRTT %v MinRTT %v after a 50 ms sample", in.SRTT, in.MinRTT)
	}
	if err := p.c.SetCongestionControl("reno"); err != nil || p.c.Info().CongestionControl != "reno" {
		t.Fatalf("SetCongestionControl: %v", err)
	}
	if err := p.c.SetCongestionControl("nope"); err == nil {
		t.Fatal("unknown algorithm accepted")
	}
}

// pacedCC is a test controller with a fixed window and a pacing rate.
type pacedCC struct{ rate uint64 }

func (p *pacedCC) Name() string { return "paced" }
func (p *pacedCC) Init(s *cc.State, now time.Time) {
	s.CWnd, s.SSThresh, s.PacingRate = 100*s.MSS, cc.MaxSSThresh, p.rate
}
func (p *pacedCC) OnAck(s *cc.State, a *cc.Ack)                        {}
func (p *pacedCC) OnCongestion(s *cc.State, now time.Time, e cc.Event) {}
func (p *pacedCC) OnRecoveryEnd(s *cc.State, now time.Time)            {}
func (p *pacedCC) Undo(s *cc.State, now time.Time)                     {}
func (p *pacedCC) OnSent(s *cc.State, now time.Time, bytes int)        {}

// TestPacing: with a controller's pacing rate, segments leave spaced by
// their size over the rate.
func TestPacing(t *testing.T) {
	e := newEnv(t)
	e.p.RegisterCC("paced", func() cc.Controller { return &pacedCC{rate: 100 * mss} }) // 10 ms a segment
	c, _ := e.p.Dial(netip.AddrPort{}, peerAddr, Options{CongestionControl: "paced"})
	syn := e.net.takeOne(t)
	p := &tpeer{t: t, e: e, c: c, addr: peerAddr, local: c.LocalAddr(), seq: 1, tsval: 1, ts: true, sack: true, wnd: 65535}
	p.ack = syn.seq + 1
	p.send(flags(fSYN|fACK), func(s *seg) { s.opts = defPeer.wire(1, syn.opts.TSVal) })
	p.take()
	p.wnd = 511
	p.write(strings.Repeat("p", 4*mss))
	p.expect(dataLen(mss))
	for range 3 {
		p.advance(10*time.Millisecond - time.Microsecond)
		p.expectNone()
		p.advance(time.Microsecond)
		p.expect(dataLen(mss))
	}
}
