package tcp

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"ustack/internal/seqnum"
	"ustack/wire"
)

// The connection engine's test harness: a scripted peer (tpeer) on the
// protocol's fake network and fake clock (fakenet_test.go). The peer
// sends segments built from its own sequence state, and a test takes what
// the connection emitted and checks it with small composable checkers:
//
//	p.send(data("abc"), flags(fACK|fPSH))
//	p.expect(isFlags(fACK), ackIs(p.seq), noData())

// tpeer is the far end of the connection under test.
type tpeer struct {
	t     *testing.T
	e     *env
	c     *Conn
	addr  netip.AddrPort // the peer
	local netip.AddrPort // the connection's address
	seq   seqnum.Value   // the peer's next sequence number
	ack   seqnum.Value   // what the peer acknowledges of ours
	wnd   uint16         // the peer's window field
	ws    uint8          // the peer's window shift, when agreed
	ts    bool           // timestamps agreed
	tsval uint32         // the peer's next TSval
	ecr   uint32         // the latest TSval the connection sent
	sack  bool
}

// segMod changes a segment the peer is about to send.
type segMod func(s *seg)

func data(b string) segMod         { return func(s *seg) { s.payload = []byte(b) } }
func flags(f wire.TCPFlags) segMod { return func(s *seg) { s.flags = f } }
func seqAt(v seqnum.Value) segMod  { return func(s *seg) { s.seq = v } }
func ackAt(v seqnum.Value) segMod  { return func(s *seg) { s.ack = v } }
func window(w uint16) segMod       { return func(s *seg) { s.wnd = w } }
func tsVal(v uint32) segMod {
	return func(s *seg) { s.opts.TSVal = v }
}
func noTS() segMod { return func(s *seg) { s.opts.HasTimestamps = false } }

// sacks adds SACK blocks [l, r) (pairs of sequence numbers).
func sacks(b ...seqnum.Value) segMod {
	return func(s *seg) {
		s.opts.NumSACK = len(b) / 2
		for i := 0; i+1 < len(b); i += 2 {
			s.opts.SACK[i/2] = wire.SACKBlock{Left: uint32(b[i]), Right: uint32(b[i+1])}
		}
	}
}

// bytesN is n bytes of filler.
func bytesN(n int) segMod {
	return func(s *seg) { s.payload = []byte(strings.Repeat("x", n)) }
}

// build makes the peer's next segment: ACK of p.ack at p.seq, with the
// peer's window and timestamps, changed by mods.
func (p *tpeer) build(mods ...segMod) seg {
	s := seg{src: p.addr, dst: p.local, seq: p.seq, ack: p.ack, flags: fACK, wnd: p.wnd}
	if p.ts {
		s.opts.HasTimestamps, s.opts.TSVal, s.opts.TSEcr = true, p.tsval, p.ecr
	}
	for _, m := range mods {
		m(&s)
	}
	return s
}

// encode makes the bytes of s exactly as given (a zero window stays
// zero) with a valid checksum.
func (s seg) encode() []byte {
	f := wire.TCPFields{SrcPort: s.src.Port(), DstPort: s.dst.Port(), Seq: uint32(s.seq),
		Ack: uint32(s.ack), Flags: s.flags, Window: s.wnd, Options: s.opts}
	b := make([]byte, f.Len()+len(s.payload))
	f.Encode(b)
	copy(b[f.Len():], s.payload)
	wire.TCP(b).UpdateChecksum(wire.PseudoHeaderChecksum(wire.IPProtoTCP, s.src.Addr(), s.dst.Addr(), len(b)))
	return b
}

// send injects the peer's next segment and advances its sequence number
// past the segment when it was at p.seq.
func (p *tpeer) send(mods ...segMod) seg {
	p.t.Helper()
	s := p.build(mods...)
	p.e.injectRaw(p.t, s.info(), s.encode())
	if s.seq == p.seq {
		n := seqnum.Size(len(s.payload))
		if s.flags&(fSYN) != 0 {
			n++
		}
		if s.flags&fFIN != 0 {
			n++
		}
		p.seq = p.seq.Add(n)
	}
	return s
}

// take returns what the connection sent since the last take, noting its
// latest TSval for the peer's echoes.
func (p *tpeer) take() []sentSeg {
	out := p.e.net.take()
	for _, s := range out {
		if s.opts.HasTimestamps {
			p.ecr = s.opts.TSVal
		}
	}
	return out
}

// expect takes exactly one segment and checks it.
func (p *tpeer) expect(cs ...check) sentSeg {
	p.t.Helper()
	out := p.take()
	if len(out) != 1 {
		p.t.Fatalf("sent %d segments, want 1:\n%s", len(out), fmtSegs(out))
	}
	checkSeg(p.t, out[0], cs...)
	return out[0]
}

// expectN takes exactly n segments.
func (p *tpeer) expectN(n int) []sentSeg {
	p.t.Helper()
	out := p.take()
	if len(out) != n {
		p.t.Fatalf("sent %d segments, want %d:\n%s", len(out), n, fmtSegs(out))
	}
	return out
}

// expectNone checks that nothing was sent.
func (p *tpeer) expectNone() {
	p.t.Helper()
	if out := p.take(); len(out) != 0 {
		p.t.Fatalf("sent %d segments, want none:\n%s", len(out), fmtSegs(out))
	}
}

// advance moves the fake clock (running the timers that fall due).
func (p *tpeer) advance(d time.Duration) { p.e.clk.Advance(d) }

func fmtSegs(ss []sentSeg) string {
	var b strings.Builder
	for _, s := range ss {
		fmt.Fprintf(&b, "  %s\n", fmtSeg(s))
	}
	return b.String()
}

func fmtSeg(s sentSeg) string {
	return fmt.Sprintf("%v seq=%d ack=%d wnd=%d len=%d [%s]", s.flags, s.seq, s.ack, s.wnd, len(s.payload), s.opts.String())
}

// check is one assertion about a sent segment.
type check func(s sentSeg) error

func checkSeg(t *testing.T, s sentSeg, cs ...check) {
	t.Helper()
	for _, c := range cs {
		if err := c(s); err != nil {
			t.Fatalf("segment %s: %v", fmtSeg(s), err)
		}
	}
}

func isFlags(f wire.TCPFlags) check {
	return func(s sentSeg) error {
		if s.flags != f {
			return fmt.Errorf("flags %v, want %v", s.flags, f)
		}
		return nil
	}
}

func hasFlags(f wire.TCPFlags) check {
	return func(s sentSeg) error {
		if s.flags&f != f {
			return fmt.Errorf("flags %v, want %v set", s.flags, f)
		}
		return nil
	}
}

func seqIs(v seqnum.Value) check {
	return func(s sentSeg) error {
		if s.seq != v {
			return fmt.Errorf("seq %d, want %d", s.seq, v)
		}
		return nil
	}
}

func ackIs(v seqnum.Value) check {
	return func(s sentSeg) error {
		if s.ack != v {
			return fmt.Errorf("ack %d, want %d", s.ack, v)
		}
		return nil
	}
}

func wndIs(w uint16) check {
	return func(s sentSeg) error {
		if s.wnd != w {
			return fmt.Errorf("window %d, want %d", s.wnd, w)
		}
		return nil
	}
}

func dataLen(n int) check {
	return func(s sentSeg) error {
		if len(s.payload) != n {
			return fmt.Errorf("%d data bytes, want %d", len(s.payload), n)
		}
		return nil
	}
}

func noData() check { return dataLen(0) }

func payloadIs(b string) check {
	return func(s sentSeg) error {
		if string(s.payload) != b {
			return fmt.Errorf("payload %q, want %q", s.payload, b)
		}
		return nil
	}
}

// sackIs checks the SACK blocks, in order ([l, r) pairs); none for no
// arguments.
func sackIs(b ...seqnum.Value) check {
	return func(s sentSeg) error {
		var got []seqnum.Value
		for _, blk := range s.opts.SACKBlocks() {
			got = append(got, seqnum.Value(blk.Left), seqnum.Value(blk.Right))
		}
		if !slices.Equal(got, b) {
			return fmt.Errorf("SACK blocks %v, want %v", got, b)
		}
		return nil
	}
}

func tsEcrIs(v uint32) check {
	return func(s sentSeg) error {
		if !s.opts.HasTimestamps || s.opts.TSEcr != v {
			return fmt.Errorf("TS %v ecr %d, want ecr %d", s.opts.HasTimestamps, s.opts.TSEcr, v)
		}
		return nil
	}
}

func hasTS(on bool) check {
	return func(s sentSeg) error {
		if s.opts.HasTimestamps != on {
			return fmt.Errorf("timestamps %v, want %v", s.opts.HasTimestamps, on)
		}
		return nil
	}
}

// peerOpts are the options the scripted peer offers in its SYN or SYN-ACK.
type peerOpts struct {
	mss     uint16 // 0: no MSS option
	ws      int    // -1: no window scaling
	sack    bool
	ts      bool
	wnd     uint16 // window field of the SYN (0: 65535)
	synRTT  time.Duration
	options Options // the connection's options
}

var defPeer = peerOpts{mss: 1460, ws: 7, sack: true, ts: true, synRTT: 100 * time.Millisecond}

func (o peerOpts) wire(tsval, ecr uint32) wire.TCPOptions {
	var w wire.TCPOptions
	if o.mss > 0 {
		w.HasMSS, w.MSS = true, o.mss
	}
	if o.ws >= 0 {
		w.HasWScale, w.WScale = true, uint8(o.ws)
	}
	w.SACKPermitted = o.sack
	if o.ts {
		w.HasTimestamps, w.TSVal, w.TSEcr = true, tsval, ecr
	}
	return w
}

var peerAddr = netip.AddrPortFrom(peerIP, 5555)

// dialPeer makes an active open answered by the scripted peer: Dial, the
// SYN, the SYN-ACK o.synRTT later, our ACK. The connection is
// ESTABLISHED, with an RTT sample of o.synRTT.
func dialPeer(t *testing.T, o peerOpts) (*env, *tpeer) {
	t.Helper()
	e := newEnv(t)
	c, err := e.p.Dial(netip.AddrPort{}, peerAddr, o.options)
	if err != nil {
		t.Fatal(err)
	}
	p := &tpeer{t: t, e: e, c: c, addr: peerAddr, local: c.LocalAddr(), seq: 50000, tsval: 7000, ts: o.ts, sack: o.sack}
	syn := p.expect(isFlags(fSYN))
	if o.synRTT == 0 {
		o.synRTT = 100 * time.Millisecond
	}
	p.advance(o.synRTT)
	p.ack = syn.seq + 1
	p.wnd = 65535
	if o.wnd != 0 {
		p.wnd = o.wnd
	}
	p.send(flags(fSYN|fACK), func(s *seg) {
		s.opts = o.wire(p.tsval, syn.opts.TSVal)
		s.wnd = p.wnd
	})
	if o.ws >= 0 {
		p.ws = uint8(o.ws)
	}
	p.expect(isFlags(fACK), seqIs(p.ack), ackIs(p.seq), noData())
	if st := c.state(); st != StateEstablished {
		t.Fatalf("state %v after the handshake", st)
	}
	p.wnd = 65535 >> p.ws
	return e, p
}

// acceptPeer makes a passive open from the scripted peer through a
// listener, and returns the accepted connection's peer.
func acceptPeer(t *testing.T, o peerOpts) (*env, *tpeer) {
	t.Helper()
	e := newEnv(t)
	l, err := e.p.Listen(netip.AddrPortFrom(localIP, 80), 8, o.options)
	if err != nil {
		t.Fatal(err)
	}
	p := &tpeer{t: t, e: e, addr: peerAddr, local: netip.AddrPortFrom(localIP, 80), seq: 90000, tsval: 100, ts: o.ts, sack: o.sack, wnd: 65535}
	p.send(flags(fSYN), func(s *seg) { s.opts = o.wire(p.tsval, 0); s.ack = 0 })
	sa := p.expect(isFlags(fSYN | fACK))
	p.ack = sa.seq + 1
	p.advance(o.synRTT)
	if o.ws >= 0 {
		p.ws = uint8(o.ws)
	}
	p.tsval++
	p.send()
	c, err := l.Accept()
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	p.c = c
	l.Close()
	p.take()
	return e, p
}

// read drains the connection.
func (p *tpeer) read() (string, error) {
	var out []byte
	b := make([]byte, 64<<10)
	for {
		n, err := p.c.Read(b)
		out = append(out, b[:n]...)
		if err != nil {
			if errors.Is(err, ErrWouldBlock) {
				err = nil
			}
			return string(out), err
		}
	}
}

// write writes all of s or fails.
func (p *tpeer) write(s string) {
	p.t.Helper()
	n, err := p.c.Write([]byte(s))
	if err != nil || n != len(s) {
		p.t.Fatalf("Write: %d, %v", n, err)
	}
}

// nxt is the connection's snd.nxt as the peer should see it.
func (p *tpeer) nxt() seqnum.Value {
	p.c.mu.Lock()
	defer p.c.mu.Unlock()
	return p.c.sndNxt
}

// signalled reports whether ch has a value (and takes it).
func signalled(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
