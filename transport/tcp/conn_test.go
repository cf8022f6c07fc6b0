package tcp

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"ustack/internal/seqnum"
	"ustack/proto"
	"ustack/wire"
)

// Engine tests of the state machine (RFC 9293 §3.10), without I/O, on a
// fake clock: handshakes, closes, resets, RFC 5961, TIME-WAIT.

func TestActiveOpen(t *testing.T) {
	e := newEnv(t)
	c, err := e.p.Dial(netip.AddrPort{}, peerAddr, Options{})
	if err != nil {
		t.Fatal(err)
	}
	syn := e.net.takeOne(t)
	checkSeg(t, syn, isFlags(fSYN), noData(), func(s sentSeg) error {
		o := s.opts
		if !o.HasMSS || o.MSS != 1460 || !o.HasWScale || !o.SACKPermitted || !o.HasTimestamps || o.TSEcr != 0 {
			return errors.New("want MSS 1460, wscale, sackOK, TS with ecr 0")
		}
		return nil
	})
	if c.Connected() || signalled(c.Writable()) {
		t.Fatal("connected before the SYN-ACK")
	}
	if n, err := c.Write([]byte("x")); n != 0 || err != ErrWouldBlock {
		t.Fatalf("Write in SYN-SENT: %d %v", n, err)
	}
	p := &tpeer{t: t, e: e, c: c, addr: peerAddr, local: c.LocalAddr(), seq: 777, tsval: 55, ts: true, wnd: 1000}
	p.advance(30 * time.Millisecond)
	p.ack = syn.seq + 1
	p.send(flags(fSYN|fACK), window(5000), func(s *seg) { s.opts = defPeer.wire(55, syn.opts.TSVal) })
	p.expect(isFlags(fACK), seqIs(syn.seq+1), ackIs(778), tsEcrIs(55), noData())
	if !c.Connected() || !signalled(c.Writable()) {
		t.Fatal("not connected after the SYN-ACK")
	}
	in := c.Info()
	if in.State != StateEstablished || !in.TimestampsOK || !in.SACKOK || !in.WScaleOK || in.SndWScale != 7 ||
		in.MSS != 1460-12 || in.SRTT != 30*time.Millisecond || in.SndWnd != 5000 {
		t.Fatalf("Info %+v", in)
	}
	if in.RTO != 200*time.Millisecond {
		t.Errorf("RTO %v after one 30 ms sample, want the 200 ms floor", in.RTO)
	}
}

func TestActiveOpenNoOptions(t *testing.T) {
	_, p := dialPeer(t, peerOpts{ws: -1})
	in := p.c.Info()
	if in.TimestampsOK || in.SACKOK || in.WScaleOK || in.MSS != 536 {
		t.Fatalf("Info %+v: want no options, MSS 536 (RFC 9293 §3.7.1)", in)
	}
	p.write("hello")
	p.expect(isFlags(fACK|fPSH), payloadIs("hello"), hasTS(false))
}

func TestSynSentBadACK(t *testing.T) {
	e := newEnv(t)
	c, _ := e.p.Dial(netip.AddrPort{}, peerAddr, Options{})
	syn := e.net.takeOne(t)
	p := &tpeer{t: t, e: e, c: c, addr: peerAddr, local: c.LocalAddr(), seq: 10}
	// An ACK of something else: RST <SEQ=SEG.ACK> (RFC 9293 §3.10.7.3).
	p.send(flags(fSYN|fACK), ackAt(syn.seq+5))
	p.expect(isFlags(fRST), seqIs(syn.seq+5))
	// An RST without an acceptable ACK is ignored; with one it refuses.
	p.send(flags(fRST), ackAt(0))
	p.expectNone()
	p.send(flags(fRST|fACK), ackAt(syn.seq+1))
	if c.state() != StateClosed || !errors.Is(c.Err(), syscall.ECONNREFUSED) {
		t.Fatalf("state %v err %v", c.state(), c.Err())
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("Read: %v", err)
	}
	select {
	case <-c.Done():
	default:
		t.Fatal("Done not closed")
	}
}

func TestSynRetransmitBackoff(t *testing.T) {
	e := newEnv(t)
	e.p.tun.SynRetries.Store(3)
	c, _ := e.p.Dial(netip.AddrPort{}, peerAddr, Options{})
	e.net.takeOne(t)
	p := &tpeer{t: t, e: e, c: c}
	for _, d := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		p.advance(d - time.Millisecond)
		p.expectNone()
		p.advance(time.Millisecond)
		p.expect(isFlags(fSYN))
	}
	p.advance(8 * time.Second)
	if c.state() != StateClosed || !errors.Is(c.Err(), syscall.ETIMEDOUT) {
		t.Fatalf("state %v err %v, want CLOSED ETIMEDOUT", c.state(), c.Err())
	}
	if e.stat("tcp.syn_retrans") != 3 || e.stat("tcp.attempt_fails") != 1 {
		t.Errorf("syn_retrans %d attempt_fails %d", e.stat("tcp.syn_retrans"), e.stat("tcp.attempt_fails"))
	}
}

func TestPassiveOpen(t *testing.T) {
	_, p := acceptPeer(t, defPeer)
	in := p.c.Info()
	if in.State != StateEstablished || !in.TimestampsOK || !in.SACKOK || in.SRTT != 100*time.Millisecond {
		t.Fatalf("Info %+v", in)
	}
	p.send(data("ping"), flags(fACK|fPSH))
	p.expect(isFlags(fACK), ackIs(p.seq)) // quick-ACK mode after the handshake
	if s, _ := p.read(); s != "ping" {
		t.Fatalf("read %q", s)
	}
	p.write("pong")
	p.expect(isFlags(fACK|fPSH), payloadIs("pong"), ackIs(p.seq))
}

// TestSimultaneousOpen: RFC 9293 §3.5 figure 8.
func TestSimultaneousOpen(t *testing.T) {
	e := newEnv(t)
	c, _ := e.p.Dial(netip.AddrPort{}, peerAddr, Options{})
	syn := e.net.takeOne(t)
	p := &tpeer{t: t, e: e, c: c, addr: peerAddr, local: c.LocalAddr(), seq: 300, tsval: 9, ts: true, sack: true, wnd: 1000}
	// The peer's SYN crosses ours.
	p.send(flags(fSYN), ackAt(0), func(s *seg) { s.opts = defPeer.wire(9, 0) })
	if st := c.state(); st != StateSynReceived {
		t.Fatalf("state %v, want SYN-RECEIVED", st)
	}
	p.expect(isFlags(fSYN|fACK), seqIs(syn.seq), ackIs(301))
	// Its SYN-ACK (for our SYN) arrives.
	p.seq = 300
	p.ack = syn.seq + 1
	p.send(flags(fSYN|fACK), func(s *seg) { s.opts = defPeer.wire(10, syn.opts.TSVal) })
	if st := c.state(); st != StateEstablished || !c.Connected() {
		t.Fatalf("state %v, want ESTABLISHED", st)
	}
	p.write("x")
	p.expect(hasFlags(fACK), payloadIs("x"), seqIs(syn.seq+1), ackIs(301))
}

func TestPeerCloseFirst(t *testing.T) {
	_, p := dialPeer(t, defPeer)
	c := p.c
	p.send(data("bye"), flags(fACK|fFIN))
	if c.state() != StateCloseWait {
		t.Fatalf("state %v", c.state())
	}
	p.expect(isFlags(fACK), ackIs(p.seq)) // a FIN is acknowledged at once
	if s, err := p.read(); s != "bye" || err != io.EOF {
		t.Fatalf("read %q %v", s, err)
	}
	p.write("late") // CLOSE-WAIT may still send
	p.expect(payloadIs("late"))
	p.ack += 4
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	fin := p.expect(isFlags(fACK|fFIN), noData())
	if c.state() != StateLastAck {
		t.Fatalf("state %v", c.state())
	}
	p.ack = fin.seq + 1
	p.send()
	if c.state() != StateClosed {
		t.Fatalf("state %v after the last ACK", c.state())
	}
	select {
	case <-c.Done():
	default:
		t.Fatal("Done not closed")
	}
	if got, _ := p.e.p.conns.lookup(keyOf(c.id())); got != nil {
		t.Fatal("connection still hashed")
	}
}

func TestActiveCloseTimeWait(t *testing.T) {
	e, p := dialPeer(t, defPeer)
	c := p.c
	c.SetNoDelay(false)
	p.write("abc")
	p.expect(isFlags(fACK|fPSH), payloadIs("abc"))
	p.write("de") // held by Nagle: "abc" is unacknowledged
	p.expectNone()
	c.Close()
	// The FIN goes with the data held (RFC 9293 §3.10.4).
	fin := p.expect(isFlags(fACK|fPSH|fFIN), payloadIs("de"))
	fin.seq -= 3
	if c.state() != StateFinWait1 {
		t.Fatalf("state %v", c.state())
	}
	p.ack = fin.seq + 6
	p.send()
	if c.state() != StateFinWait2 {
		t.Fatalf("state %v", c.state())
	}
	p.send(flags(fACK | fFIN))
	p.expect(isFlags(fACK), ackIs(p.seq))
	if c.state() != StateTimeWait {
		t.Fatalf("state %v", c.state())
	}
	select {
	case <-c.Done():
	default:
		t.Fatal("Done not closed in TIME-WAIT")
	}
	// A retransmitted FIN is acknowledged and restarts 2·MSL.
	p.advance(50 * time.Second)
	p.seq--
	p.send(flags(fACK | fFIN))
	p.expect(isFlags(fACK), ackIs(p.seq))
	p.advance(59 * time.Second)
	if c.state() != StateTimeWait {
		t.Fatalf("state %v: the FIN should restart 2·MSL", c.state())
	}
	p.advance(time.Second)
	if c.state() != StateClosed {
		t.Fatalf("state %v after 2·MSL", c.state())
	}
	if got, _ := e.p.conns.lookup(keyOf(c.id())); got != nil {
		t.Fatal("connection still hashed after TIME-WAIT")
	}
}

func TestTimeWaitMSLTunable(t *testing.T) {
	e, p := dialPeer(t, defPeer)
	if err := e.sys.Set("net.inet.tcp.msl", "1s"); err != nil {
		t.Fatal(err)
	}
	p.c.Close()
	fin := p.expect(hasFlags(fFIN))
	p.ack = fin.seq + 1
	p.send(flags(fACK | fFIN))
	p.advance(1999 * time.Millisecond)
	if p.c.state() != StateTimeWait {
		t.Fatalf("state %v", p.c.state())
	}
	p.advance(time.Millisecond)
	if p.c.state() != StateClosed {
		t.Fatalf("state %v after 2 s", p.c.state())
	}
}

// TestSimultaneousClose: RFC 9293 §3.6 figure 13.
func TestSimultaneousClose(t *testing.T) {
	_, p := dialPeer(t, defPeer)
	c := p.c
	c.Close()
	fin := p.expect(isFlags(fACK | fFIN))
	// The peer's FIN crosses ours: it does not acknowledge our FIN.
	p.send(flags(fACK | fFIN))
	if c.state() != StateClosing {
		t.Fatalf("state %v, want CLOSING", c.state())
	}
	p.expect(isFlags(fACK), ackIs(p.seq), seqIs(fin.seq+1))
	p.ack = fin.seq + 1
	p.send()
	if c.state() != StateTimeWait {
		t.Fatalf("state %v, want TIME-WAIT", c.state())
	}
}

func TestHalfClose(t *testing.T) {
	_, p := dialPeer(t, defPeer)
	c := p.c
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	fin := p.expect(isFlags(fACK | fFIN))
	if _, err := c.Write([]byte("x")); !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("Write after CloseWrite: %v, want EPIPE", err)
	}
	p.ack = fin.seq + 1
	p.send()
	// FIN-WAIT-2: the peer goes on sending.
	p.send(data("more"), flags(fACK|fPSH))
	if s, err := p.read(); s != "more" || err != nil {
		t.Fatalf("read %q %v", s, err)
	}
	p.send(flags(fACK | fFIN))
	if _, err := p.read(); err != io.EOF {
		t.Fatalf("read after the FIN: %v", err)
	}
	if c.state() != StateTimeWait {
		t.Fatalf("state %v", c.state())
	}
}

func TestFinWait2Timeout(t *testing.T) {
	_, p := dialPeer(t, defPeer)
	p.c.Close()
	fin := p.expect(hasFlags(fFIN))
	p.ack = fin.seq + 1
	p.send()
	if p.c.state() != StateFinWait2 {
		t.Fatalf("state %v", p.c.state())
	}
	p.advance(DefaultFinTimeout)
	if p.c.state() != StateClosed {
		t.Fatalf("state %v after fin_timeout", p.c.state())
	}
}

func TestRSTExact(t *testing.T) {
	e, p := dialPeer(t, defPeer)
	p.send(flags(fRST), noTS())
	if p.c.state() != StateClosed {
		t.Fatalf("state %v", p.c.state())
	}
	if _, err := p.c.Read(make([]byte, 4)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("Read: %v", err)
	}
	if _, err := p.c.Write([]byte("x")); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("Write: %v", err)
	}
	if e.stat("tcp.estab_resets") != 1 {
		t.Errorf("estab_resets %d", e.stat("tcp.estab_resets"))
	}
	p.expectNone()
}

// TestRSTInWindow: RFC 5961 §3.2: an in-window RST that is not exact
// draws a challenge ACK; one outside the window is dropped silently.
func TestRSTInWindow(t *testing.T) {
	_, p := dialPeer(t, defPeer)
	p.send(flags(fRST), seqAt(p.seq+100))
	p.expect(isFlags(fACK), ackIs(p.seq), seqIs(p.ack))
	if p.c.state() != StateEstablished {
		t.Fatalf("state %v", p.c.state())
	}
	p.send(flags(fRST), seqAt(p.seq+10_000_000))
	p.expectNone()
	p.send(flags(fRST), seqAt(p.seq-1))
	p.expectNone()
	if p.c.state() != StateEstablished {
		t.Fatalf("state %v", p.c.state())
	}
}

func TestChallengeACKRateLimit(t *testing.T) {
	e, p := dialPeer(t, defPeer)
	if err := e.sys.Set("net.inet.tcp.challenge_ack_limit", "3"); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		p.send(flags(fRST), seqAt(p.seq+5))
	}
	p.expectN(3)
	if e.stat("tcp.challenge_acks") != 3 || e.stat("tcp.challenge_acks_limited") != 7 {
		t.Errorf("challenge_acks %d limited %d", e.stat("tcp.challenge_acks"), e.stat("tcp.challenge_acks_limited"))
	}
	p.advance(time.Second)
	p.send(flags(fRST), seqAt(p.seq+5))
	p.expectN(1)
}

// TestSYNInEstablished: RFC 5961 §4: challenge ACK, no reset.
func TestSYNInEstablished(t *testing.T) {
	_, p := dialPeer(t, defPeer)
	p.send(flags(fSYN), seqAt(p.seq+1000))
	p.expect(isFlags(fACK), ackIs(p.seq))
	p.send(flags(fSYN), seqAt(p.seq-5000))
	p.expect(isFlags(fACK), ackIs(p.seq))
	if p.c.state() != StateEstablished {
		t.Fatalf("state %v", p.c.state())
	}
}

// TestACKValidity: RFC 5961 §5.2: ACKs of unsent data and ACKs far
// below snd.una are dropped with an ACK.
func TestACKValidity(t *testing.T) {
	_, p := dialPeer(t, defPeer)
	p.write("0123456789")
	p.expect(dataLen(10))
	p.send(data("a"), ackAt(p.ack+11))
	p.expect(isFlags(fACK), ackIs(p.seq-1)) // the data was not taken
	p.seq--
	p.send(data("b"), ackAt(p.ack-200000))
	p.expect(isFlags(fACK), ackIs(p.seq-1))
	p.seq--
	p.send(data("c"), ackAt(p.ack+10))
	p.expect(isFlags(fACK), ackIs(p.seq))
	if s, _ := p.read(); s != "c" {
		t.Fatalf("read %q", s)
	}
}

func TestOutOfWindowData(t *testing.T) {
	e, p := dialPeer(t, defPeer)
	p.send(data("zzz"), seqAt(p.seq+1<<20))
	p.expect(isFlags(fACK), ackIs(p.seq))
	if e.stat("tcp.out_of_window") != 1 {
		t.Errorf("out_of_window %d", e.stat("tcp.out_of_window"))
	}
}

// TestPAWS: RFC 7323 §5.3: a segment with an older timestamp is dropped
// and acknowledged.
func TestPAWS(t *testing.T) {
	e, p := dialPeer(t, defPeer)
	p.tsval = 8000
	p.send(data("new"))
	p.expect(tsEcrIs(8000))
	p.send(data("old"), tsVal(7999))
	p.expect(isFlags(fACK), ackIs(p.seq-3))
	if s, _ := p.read(); s != "new" {
		t.Fatalf("read %q", s)
	}
	if e.stat("tcp.paws_drops") != 1 {
		t.Errorf("paws_drops %d", e.stat("tcp.paws_drops"))
	}
	// An RST is exempt (RFC 7323 §5.3 R1).
	p.seq -= 3
	p.send(flags(fRST), tsVal(1))
	if p.c.state() != StateClosed {
		t.Fatalf("state %v: an exact RST with an old timestamp must reset", p.c.state())
	}
}

// TestTimeWaitReuse: a SYN with a newer timestamp ends TIME-WAIT and
// reaches the listener (RFC 6191); an older one gets a challenge ACK.
func TestTimeWaitReuse(t *testing.T) {
	e, p := acceptPeer(t, defPeer)
	p.c.Close()
	fin := p.expect(hasFlags(fFIN))
	p.ack = fin.seq + 1
	p.tsval++
	p.send(flags(fACK | fFIN))
	p.take()
	if p.c.state() != StateTimeWait {
		t.Fatalf("state %v", p.c.state())
	}
	l, err := e.p.Listen(netip.AddrPortFrom(localIP, 80), 8, Options{ReuseAddr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// An old SYN (older timestamp): challenge ACK, TIME-WAIT stays.
	p.send(flags(fSYN), tsVal(p.tsval-5), seqAt(p.seq+1000), ackAt(0))
	p.expect(isFlags(fACK))
	if p.c.state() != StateTimeWait {
		t.Fatalf("state %v", p.c.state())
	}
	// A new one.
	p.advance(time.Second)
	p.send(flags(fSYN), tsVal(p.tsval+1000), seqAt(p.seq+100000), ackAt(0), func(s *seg) {
		s.opts.HasMSS, s.opts.MSS = true, 1460
	})
	if p.c.state() != StateClosed {
		t.Fatalf("state %v, want CLOSED", p.c.state())
	}
	p.expect(isFlags(fSYN|fACK), ackIs(p.seq+100000+1))
	if e.stat("tcp.time_wait_reused") != 1 {
		t.Errorf("time_wait_reused %d", e.stat("tcp.time_wait_reused"))
	}
}

func TestCloseWithUnreadDataResets(t *testing.T) {
	e, p := dialPeer(t, defPeer)
	p.send(data("unread"))
	p.take()
	p.c.Close()
	p.expect(isFlags(fRST), seqIs(p.ack))
	if p.c.state() != StateClosed || e.stat("tcp.abort_on_close") != 1 {
		t.Fatalf("state %v", p.c.state())
	}
	if _, err := p.c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read after Close: %v", err)
	}
}

func TestLingerZeroResets(t *testing.T) {
	_, p := dialPeer(t, defPeer)
	p.write("queued")
	p.take()
	p.c.SetLinger(true, 0)
	p.c.Close()
	p.expect(isFlags(fRST), seqIs(p.ack+6))
	if p.c.state() != StateClosed {
		t.Fatalf("state %v", p.c.state())
	}
}

func TestAbort(t *testing.T) {
	_, p := dialPeer(t, defPeer)
	p.c.Abort()
	p.expect(isFlags(fRST), seqIs(p.ack))
	if p.c.state() != StateClosed {
		t.Fatalf("state %v", p.c.state())
	}
}

// TestDataAfterCloseResets: data for a closed (orphan) connection: RST
// (Linux TCPAbortOnData).
func TestDataAfterCloseResets(t *testing.T) {
	e, p := dialPeer(t, defPeer)
	p.c.Close()
	fin := p.expect(hasFlags(fFIN))
	p.ack = fin.seq + 1
	p.send()
	p.send(data("late"))
	p.expect(isFlags(fRST))
	if p.c.state() != StateClosed || e.stat("tcp.abort_on_data") != 1 {
		t.Fatalf("state %v", p.c.state())
	}
}

func TestICMP(t *testing.T) {
	quote := func(c *Conn, seq seqnum.Value) []byte {
		b := make([]byte, 8)
		f := wire.TCPFields{SrcPort: c.LocalAddr().Port(), DstPort: c.RemoteAddr().Port(), Seq: uint32(seq)}
		var h [20]byte
		f.Encode(h[:])
		copy(b, h[:8])
		return b
	}
	t.Run("refused in SYN-SENT", func(t *testing.T) {
		e := newEnv(t)
		c, _ := e.p.Dial(netip.AddrPort{}, peerAddr, Options{})
		syn := e.net.takeOne(t)
		e.p.HandleError(&proto.ICMPError{Kind: proto.ErrPortUnreachable, Src: c.LocalAddr().Addr(),
			Dst: peerAddr.Addr(), Proto: wire.IPProtoTCP, Quote: quote(c, syn.seq+7)})
		if c.state() != StateSynSent {
			t.Fatal("an error quoting a wrong sequence number was taken")
		}
		e.p.HandleError(&proto.ICMPError{Kind: proto.ErrPortUnreachable, Src: c.LocalAddr().Addr(),
			Dst: peerAddr.Addr(), Proto: wire.IPProtoTCP, Quote: quote(c, syn.seq)})
		if c.state() != StateClosed || !errors.Is(c.Err(), syscall.ECONNREFUSED) {
			t.Fatalf("state %v err %v", c.state(), c.Err())
		}
	})
	t.Run("soft when established", func(t *testing.T) {
		e, p := dialPeer(t, defPeer)
		p.write("x")
		p.take()
		e.p.HandleError(&proto.ICMPError{Kind: proto.ErrHostUnreachable, Src: p.local.Addr(),
			Dst: peerAddr.Addr(), Proto: wire.IPProtoTCP, Quote: quote(p.c, p.ack)})
		if p.c.state() != StateEstablished || !errors.Is(p.c.Err(), syscall.EHOSTUNREACH) {
			t.Fatalf("state %v", p.c.state())
		}
		if p.c.Err() != nil {
			t.Fatal("Err does not clear")
		}
	})
}
