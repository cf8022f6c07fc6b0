package tcp

import (
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"ustack/internal/seqnum"
	"ustack/proto"
	"ustack/wire"
)

const (
	fSYN = wire.TCPFlagSYN
	fACK = wire.TCPFlagACK
	fRST = wire.TCPFlagRST
	fFIN = wire.TCPFlagFIN
	fPSH = wire.TCPFlagPSH
)

var lport = netip.AddrPortFrom(localIP, 80)

func peerN(n int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(n >> 8), byte(n)}), uint16(30000+n%1000))
}

func mustAccept(t *testing.T, l *Listener) *Conn {
	t.Helper()
	c, err := l.Accept()
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	return c
}

func readAll(t *testing.T, c *Conn) string {
	t.Helper()
	var out []byte
	b := make([]byte, 4096)
	for {
		n, err := c.Read(b)
		out = append(out, b[:n]...)
		if err != nil || n == 0 {
			break
		}
	}
	return string(out)
}

var fullSYNOpts = wire.TCPOptions{MSS: 1460, HasMSS: true, WScale: 9, HasWScale: true,
	SACKPermitted: true, TSVal: 4242, HasTimestamps: true}

func TestListenHandshake(t *testing.T) {
	e := newEnv(t)
	l := mustListen(t, e, lport, 16, Options{})
	peer := peerN(1)
	e.inject(t, seg{src: peer, dst: lport, seq: 5000, flags: fSYN, opts: fullSYNOpts})
	sa := e.net.takeOne(t)
	if sa.flags != fSYN|fACK || sa.ack != 5001 || sa.src != lport || sa.dst != peer {
		t.Fatalf("SYN-ACK %+v", sa)
	}
	want := wire.TCPOptions{MSS: 1460, HasMSS: true, WScale: wscaleFor(DefaultRmemMax), HasWScale: true,
		SACKPermitted: true, HasTimestamps: true, TSVal: e.p.tsVal(e.clk.Now(), e.p.tsOffset(connID{lport, peer})), TSEcr: 4242}
	if sa.opts != want {
		t.Errorf("SYN-ACK options %v, want %v", sa.opts.String(), want.String())
	}
	if sa.wnd != 65535 {
		t.Errorf("SYN-ACK window %d, want 65535 (unscaled)", sa.wnd)
	}
	if want := e.p.isn(connID{lport, peer}, e.clk.Now()); sa.seq != want {
		t.Errorf("ISS %d, want the RFC 6528 ISN %d", sa.seq, want)
	}
	if _, err := l.Accept(); !errors.Is(err, ErrWouldBlock) {
		t.Fatalf("Accept before the handshake completed: %v, want ErrWouldBlock", err)
	}
	select {
	case <-l.Readable():
		t.Fatal("readable before the handshake completed")
	default:
	}
	e.clk.Advance(30 * time.Millisecond)
	e.inject(t, seg{src: peer, dst: lport, seq: 5001, ack: sa.seq + 1, flags: fACK | fPSH,
		opts: wire.TCPOptions{TSVal: 4250, TSEcr: sa.opts.TSVal, HasTimestamps: true}, payload: []byte("hello")})
	select {
	case <-l.Readable():
	default:
		t.Fatal("not readable after the handshake")
	}
	c := mustAccept(t, l)
	if c.id() != (connID{lport, peer}) {
		t.Errorf("accepted %v", c.id())
	}
	if got := readAll(t, c); got != "hello" {
		t.Errorf("data on the final ACK: read %q", got)
	}
	if e.stat("tcp.passive_opens") != 1 {
		t.Errorf("passive_opens = %d", e.stat("tcp.passive_opens"))
	}
	if _, err := l.Accept(); !errors.Is(err, ErrWouldBlock) {
		t.Errorf("second Accept: %v", err)
	}
}

// TestListenOptionsOff: the SYN-ACK offers nothing the tunables turn off
// and nothing the peer did not offer.
func TestListenOptionsOff(t *testing.T) {
	e := newEnv(t)
	for _, n := range []string{"sack", "timestamps", "window_scaling"} {
		if err := e.sys.Set("net.inet.tcp."+n, "0"); err != nil {
			t.Fatal(err)
		}
	}
	mustListen(t, e, lport, 16, Options{MSS: 1000})
	e.inject(t, seg{src: peerN(1), dst: lport, seq: 1, flags: fSYN, opts: fullSYNOpts})
	if o := e.net.takeOne(t).opts; o != (wire.TCPOptions{MSS: 1000, HasMSS: true}) {
		t.Errorf("SYN-ACK options with sack, timestamps, window scaling off: %v", o.String())
	}
	e2 := newEnv(t)
	mustListen(t, e2, lport, 16, Options{})
	e2.inject(t, seg{src: peerN(1), dst: lport, seq: 1, flags: fSYN})
	if o := e2.net.takeOne(t).opts; o != (wire.TCPOptions{MSS: 1460, HasMSS: true}) {
		t.Errorf("SYN-ACK options to a bare SYN: %v", o.String())
	}
}

// TestSynAckRetransmit: the SYN-ACK is sent again after 1, 2, 4, 8 and 16
// s (5 retries), and the entry dropped 32 s after the last.
func TestSynAckRetransmit(t *testing.T) {
	e := newEnv(t)
	l := mustListen(t, e, lport, 16, Options{})
	peer := peerN(1)
	e.inject(t, seg{src: peer, dst: lport, seq: 100, flags: fSYN})
	first := e.net.takeOne(t)
	for i, gap := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second} {
		e.clk.Advance(gap - time.Millisecond)
		if s := e.net.take(); len(s) != 0 {
			t.Fatalf("retransmission %d early: %+v", i+1, s)
		}
		e.clk.Advance(time.Millisecond)
		s := e.net.takeOne(t)
		if s.flags != fSYN|fACK || s.seq != first.seq || s.ack != 101 {
			t.Fatalf("retransmission %d: %+v", i+1, s)
		}
	}
	if got := e.stat("tcp.syn_retrans"); got != 5 {
		t.Errorf("syn_retrans = %d, want 5", got)
	}
	e.clk.Advance(32*time.Second - time.Millisecond)
	if len(l.synq) != 1 {
		t.Fatal("entry dropped early")
	}
	e.clk.Advance(time.Millisecond)
	if s := e.net.take(); len(s) != 0 {
		t.Fatalf("sent after the last retry: %+v", s)
	}
	if len(l.synq) != 0 || e.stat("tcp.syn_queue_drops") != 1 {
		t.Fatalf("entry not dropped after synack_retries")
	}
	// The late ACK finds nothing: RST.
	e.inject(t, seg{src: peer, dst: lport, seq: 101, ack: first.seq + 1, flags: fACK})
	if r := e.net.takeOne(t); r.flags != fRST || r.seq != first.seq+1 {
		t.Errorf("late ACK answered with %+v, want RST seq %d", r, first.seq+1)
	}
	if e.clk.Pending() != 0 {
		t.Errorf("%d timers left", e.clk.Pending())
	}
}

// TestSynQueueEntry: a repeated SYN repeats the SYN-ACK; a bad ACK draws
// a RST and leaves the entry; a RST at RCV.NXT ends it, elsewhere not.
func TestSynQueueEntry(t *testing.T) {
	e := newEnv(t)
	l := mustListen(t, e, lport, 16, Options{})
	peer := peerN(1)
	e.inject(t, seg{src: peer, dst: lport, seq: 100, flags: fSYN})
	sa := e.net.takeOne(t)
	e.inject(t, seg{src: peer, dst: lport, seq: 100, flags: fSYN})
	if s := e.net.takeOne(t); s.flags != fSYN|fACK || s.seq != sa.seq {
		t.Errorf("answer to a repeated SYN: %+v", s)
	}
	e.inject(t, seg{src: peer, dst: lport, seq: 101, ack: sa.seq + 7, flags: fACK})
	if s := e.net.takeOne(t); s.flags != fRST || s.seq != sa.seq+7 {
		t.Errorf("answer to a bad ACK: %+v, want RST seq %d", s, sa.seq+7)
	}
	e.inject(t, seg{src: peer, dst: lport, seq: 105, flags: fRST})
	if len(l.synq) != 1 {
		t.Fatal("RST out of place ended the entry")
	}
	e.inject(t, seg{src: peer, dst: lport, seq: 101, flags: fRST})
	if len(l.synq) != 0 {
		t.Fatal("RST at RCV.NXT did not end the entry")
	}
	if len(e.net.take()) != 0 {
		t.Error("answered a RST")
	}
	// SYN-ACK to a listener: RST.
	e.inject(t, seg{src: peer, dst: lport, seq: 9, ack: 77, flags: fSYN | fACK})
	if s := e.net.takeOne(t); s.flags != fRST || s.seq != 77 {
		t.Errorf("answer to a SYN-ACK: %+v", s)
	}
}

// TestAcceptQueueOverflow: with the accept queue full a final ACK is
// dropped (the entry kept) and a SYN too; once Accept makes room, the
// SYN-ACK retransmission brings the ACK back and the handshake completes.
func TestAcceptQueueOverflow(t *testing.T) {
	e := newEnv(t)
	e.sys.Set("net.inet.tcp.syncookies", "0")
	l := mustListen(t, e, lport, 2, Options{})
	a, b, c := peerN(1), peerN(2), peerN(3)
	synack := func(p netip.AddrPort) sentSeg {
		e.inject(t, seg{src: p, dst: lport, seq: 10, flags: fSYN})
		return e.net.takeOne(t)
	}
	ack := func(p netip.AddrPort, s sentSeg) {
		e.inject(t, seg{src: p, dst: lport, seq: 11, ack: s.seq + 1, flags: fACK})
	}
	sa, sb := synack(a), synack(b)
	ack(a, sa)
	sc := synack(c)
	ack(b, sb)
	ack(c, sc) // accept queue (2) full: dropped
	if got := e.stat("tcp.listen_overflows"); got != 1 {
		t.Fatalf("listen_overflows = %d, want 1", got)
	}
	if len(l.synq) != 1 || len(l.acceptq) != 2 {
		t.Fatalf("synq %d acceptq %d, want 1 and 2", len(l.synq), len(l.acceptq))
	}
	e.inject(t, seg{src: peerN(4), dst: lport, seq: 10, flags: fSYN})
	if s := e.net.take(); len(s) != 0 || e.stat("tcp.listen_overflows") != 2 {
		t.Fatalf("SYN with the accept queue full: sent %+v", s)
	}
	if got := mustAccept(t, l).id().remote; got != a {
		t.Fatalf("first accepted %v, want %v", got, a)
	}
	e.clk.Advance(time.Second) // c's SYN-ACK again
	if s := e.net.takeOne(t); s.dst != c || s.flags != fSYN|fACK {
		t.Fatalf("retransmission %+v", s)
	}
	ack(c, sc)
	if got := mustAccept(t, l).id().remote; got != b {
		t.Fatalf("second accepted %v, want %v", got, b)
	}
	if got := mustAccept(t, l).id().remote; got != c {
		t.Fatalf("third accepted %v, want %v", got, c)
	}
}

// TestSynQueueFull: with cookies off a full SYN queue drops SYNs; with
// cookies on (1) it answers them with a cookie whose ACK is accepted.
func TestSynQueueFull(t *testing.T) {
	e := newEnv(t)
	e.sys.Set("net.inet.tcp.syncookies", "0")
	e.sys.Set("net.inet.tcp.max_syn_backlog", "2")
	l := mustListen(t, e, lport, 100, Options{})
	for i := range 3 {
		e.inject(t, seg{src: peerN(i), dst: lport, seq: 10, flags: fSYN})
	}
	if n := len(e.net.take()); n != 2 || e.stat("tcp.listen_drops") != 1 {
		t.Fatalf("%d SYN-ACKs, listen_drops %d; want 2, 1", n, e.stat("tcp.listen_drops"))
	}

	e.sys.Set("net.inet.tcp.syncookies", "1")
	peer := peerN(9)
	e.inject(t, seg{src: peer, dst: lport, seq: 0xfffffffe, flags: fSYN, opts: fullSYNOpts})
	sa := e.net.takeOne(t)
	if len(l.synq) != 2 || e.stat("tcp.syncookies_sent") != 1 {
		t.Fatalf("cookie not sent: synq %d", len(l.synq))
	}
	// The SYN-ACK offers what the cookie can carry, and TSval carries it.
	if !sa.opts.HasWScale || !sa.opts.SACKPermitted || !sa.opts.HasTimestamps || sa.opts.MSS != 1460 {
		t.Errorf("cookie SYN-ACK options %v", sa.opts.String())
	}
	if got := optsFromBits(uint8(sa.opts.TSVal&cookieTSMask) | cookieTS); got.sndWScale != 9 || !got.sackOK {
		t.Errorf("TSval %#x encodes %+v", sa.opts.TSVal, got)
	}
	e.clk.Advance(cookiePeriod / 2)
	if e.clk.Pending() != 2 {
		t.Errorf("%d timers: a cookie must keep none", e.clk.Pending())
	}
	e.net.take() // retransmissions for the two entries, if any
	e.inject(t, seg{src: peer, dst: lport, seq: 0xffffffff, ack: sa.seq + 1, flags: fACK,
		opts: wire.TCPOptions{HasTimestamps: true, TSVal: 5000, TSEcr: sa.opts.TSVal}})
	c := mustAccept(t, l)
	if c.id().remote != peer || e.stat("tcp.syncookies_recv") != 1 {
		t.Fatalf("accepted %v, syncookies_recv %d", c.id().remote, e.stat("tcp.syncookies_recv"))
	}
	// A forged ACK while cookies are out: RST, counted.
	e.inject(t, seg{src: peerN(10), dst: lport, seq: 5, ack: 12345, flags: fACK})
	if s := e.net.takeOne(t); s.flags != fRST || s.seq != 12345 || e.stat("tcp.syncookies_failed") != 1 {
		t.Errorf("forged cookie ACK: answered %+v, syncookies_failed %d", s, e.stat("tcp.syncookies_failed"))
	}
}

// TestCookiesAlways: syncookies=2 keeps no state at all.
func TestCookiesAlways(t *testing.T) {
	e := newEnv(t)
	e.sys.Set("net.inet.tcp.syncookies", "2")
	l := mustListen(t, e, lport, 100, Options{})
	peer := peerN(1)
	e.inject(t, seg{src: peer, dst: lport, seq: 77, flags: fSYN, opts: wire.TCPOptions{MSS: 1300, HasMSS: true}})
	sa := e.net.takeOne(t)
	if len(l.synq) != 0 || sa.opts.HasWScale || sa.opts.SACKPermitted {
		t.Fatalf("synq %d, options %v", len(l.synq), sa.opts.String())
	}
	e.inject(t, seg{src: peer, dst: lport, seq: 78, ack: sa.seq + 1, flags: fACK, payload: []byte("data")})
	c := mustAccept(t, l)
	if got := readAll(t, c); got != "data" {
		t.Errorf("read %q", got)
	}
}

// TestStrayACK: with no cookie out, an ACK for nothing is answered with
// RST and not counted as a failed cookie.
func TestStrayACK(t *testing.T) {
	e := newEnv(t)
	mustListen(t, e, lport, 100, Options{})
	e.inject(t, seg{src: peerN(1), dst: lport, seq: 5, ack: 999, flags: fACK})
	if s := e.net.takeOne(t); s.flags != fRST || s.seq != 999 || s.ack != 0 {
		t.Errorf("answer %+v", s)
	}
	if e.stat("tcp.syncookies_failed") != 0 {
		t.Error("counted as a failed cookie")
	}
}

// TestSYNFlood: 10k SYNs from distinct sources while a connection is
// established. The SYN queue stays bounded, every SYN is answered, the
// established connection keeps receiving and a new client still gets in.
func TestSYNFlood(t *testing.T) {
	e := newEnv(t)
	l := mustListen(t, e, lport, 128, Options{})
	good := netip.AddrPortFrom(peerIP, 40000)
	rcvNxt, sndNxt := e.handshake(t, l, good, 1<<31)
	est := mustAccept(t, l)
	rng := rand.New(rand.NewPCG(1, 2))
	var want []byte
	const flood = 10000
	for i := range flood {
		src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{172, 16 + byte(i>>16), byte(i >> 8), byte(i)}), uint16(1024+rng.IntN(60000)))
		e.inject(t, seg{src: src, dst: lport, seq: seqnum.Value(rng.Uint32()), flags: fSYN,
			opts: wire.TCPOptions{MSS: 1460, HasMSS: true}})
		if i%1000 == 999 {
			msg := []byte{byte('a' + i/1000)}
			e.inject(t, seg{src: good, dst: lport, seq: rcvNxt, ack: sndNxt, flags: fACK | fPSH, payload: msg})
			rcvNxt++
			want = append(want, msg...)
			e.clk.Advance(10 * time.Millisecond)
		}
	}
	if got := readAll(t, est); got != string(want) {
		t.Errorf("established connection read %q during the flood, want %q", got, want)
	}
	if n := len(l.synq); n != 128 {
		t.Errorf("SYN queue holds %d, want its bound 128", n)
	}
	if got := e.stat("tcp.syncookies_sent"); got != flood-128 {
		t.Errorf("syncookies_sent = %d, want %d", got, flood-128)
	}
	synacks := 0
	for _, s := range e.net.take() {
		if s.flags == fSYN|fACK {
			synacks++
		}
	}
	if synacks < flood {
		t.Errorf("%d SYN-ACKs for %d SYNs", synacks, flood)
	}
	// A new client gets through on a cookie.
	newc := netip.AddrPortFrom(peerIP, 40001)
	e.inject(t, seg{src: newc, dst: lport, seq: 10, flags: fSYN, opts: fullSYNOpts})
	var sa *sentSeg
	for _, s := range e.net.take() {
		if s.dst == newc {
			sa = &s
		}
	}
	if sa == nil {
		t.Fatal("no SYN-ACK for the new client")
	}
	e.inject(t, seg{src: newc, dst: lport, seq: 11, ack: sa.seq + 1, flags: fACK,
		opts: wire.TCPOptions{HasTimestamps: true, TSVal: 1, TSEcr: sa.opts.TSVal}})
	if c := mustAccept(t, l); c.id().remote != newc {
		t.Errorf("accepted %v, want %v", c.id().remote, newc)
	}
}

// TestListenerClose: Close resets what is queued, Accept reports
// net.ErrClosed, and the port answers with RST afterwards.
func TestListenerClose(t *testing.T) {
	e := newEnv(t)
	l := mustListen(t, e, lport, 16, Options{})
	e.handshake(t, l, peerN(1), 100)
	e.inject(t, seg{src: peerN(2), dst: lport, seq: 500, flags: fSYN})
	sa := e.net.takeOne(t)
	l.Close()
	rsts := map[netip.AddrPort]sentSeg{}
	for _, s := range e.net.take() {
		if s.flags&fRST != 0 {
			rsts[s.dst] = s
		}
	}
	if len(rsts) != 2 {
		t.Fatalf("Close sent %d RSTs, want 2 (accept queue, SYN queue)", len(rsts))
	}
	if r := rsts[peerN(2)]; r.seq != sa.seq+1 {
		t.Errorf("RST to the half-open peer seq %d, want %d", r.seq, sa.seq+1)
	}
	select {
	case <-l.Readable():
	default:
		t.Error("not readable after Close")
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v", err)
	}
	e.inject(t, seg{src: peerN(3), dst: lport, seq: 1, flags: fSYN})
	if s := e.net.takeOne(t); s.flags != fRST|fACK || s.ack != 2 {
		t.Errorf("SYN after Close answered with %+v", s)
	}
	if e.clk.Pending() != 0 {
		t.Errorf("%d timers left", e.clk.Pending())
	}
	l.Close()
}

// TestListenerICMP: a hard ICMP error quoting a SYN-ACK ends the entry;
// one quoting another sequence number does not.
func TestListenerICMP(t *testing.T) {
	e := newEnv(t)
	l := mustListen(t, e, lport, 16, Options{})
	peer := peerN(1)
	e.inject(t, seg{src: peer, dst: lport, seq: 100, flags: fSYN})
	sa := e.net.takeOne(t)
	icmp := func(seq seqnum.Value) {
		q := make([]byte, 20)
		wire.TCP(q).SetSrcPort(lport.Port())
		wire.TCP(q).SetDstPort(peer.Port())
		wire.TCP(q).SetSeq(uint32(seq))
		e.p.HandleError(&proto.ICMPError{Kind: proto.ErrHostUnreachable, Src: lport.Addr(), Dst: peer.Addr(),
			Proto: wire.IPProtoTCP, Quote: q})
	}
	icmp(sa.seq + 1)
	if len(l.synq) != 1 {
		t.Fatal("ICMP with the wrong sequence number ended the entry")
	}
	icmp(sa.seq)
	if len(l.synq) != 0 {
		t.Fatal("ICMP did not end the entry")
	}
}

// TestTimeWaitSYN: a SYN the engine lets reuse a TIME_WAIT tuple reaches
// the listener once the old connection is unhashed.
func TestTimeWaitSYN(t *testing.T) {
	e := newEnv(t)
	l := mustListen(t, e, lport, 16, Options{})
	peer := peerN(1)
	rcvNxt, _ := e.handshake(t, l, peer, 100)
	c := mustAccept(t, l)
	closeToTimeWait(t, e, c, rcvNxt)
	e.net.take()
	syn := &segment{id: connID{lport, peer}, seq: rcvNxt + 100000, flags: fSYN, arrived: e.clk.Now()}
	e.p.reuseTimeWait(c, syn)
	if got, _ := e.p.conns.lookup(keyOf(c.id())); got != nil {
		t.Fatal("old connection still hashed")
	}
	if s := e.net.takeOne(t); s.flags != fSYN|fACK || s.ack != syn.seq+1 {
		t.Errorf("answer %+v", s)
	}
}
