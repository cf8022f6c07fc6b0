package tcp

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"ustack/buf"
	"ustack/proto"
	"ustack/transport/tcp/cc"
	"ustack/wire"
)

// Throughput-stall guards: two stacks on the simulated network with a
// link of finite rate, as the in-process pipe of bench/ is, in the two
// situations that pipe meets on a loaded machine.
//
//   - The process is starved: nothing moves either way and the reader
//     does not read for a while, then the backlog arrives at once. The
//     tail loss probe goes off spuriously (RFC 8985 §7); it must cost a
//     probe, not a window reduction, an RTO or a wait.
//   - The receiving queue (512 frames) overflows: a burst of drops that
//     SACK recovery (RFC 6675, RACK) repairs without an RTO, the link
//     staying near full.

// stallLink delivers each segment after a one-way delay, serialized at
// rate bytes per second per direction. queue > 0 drops what would wait
// for more than queue full frames (a drop-tail queue); during the
// blackout [from, from+hold) nothing is delivered, then the backlog
// comes in order.
type stallLink struct {
	n          *simNet
	rate       float64
	queue      int
	from, hold time.Duration
	start      time.Time
	next       [2]time.Time // when each direction's link is free
	drops      int
}

func newStallLink(n *simNet, rate float64) *stallLink {
	l := &stallLink{n: n, rate: rate}
	n.dropFunc = l.send
	return l
}

// blackedOut reports whether now is inside the blackout.
func (l *stallLink) blackedOut(now time.Time) bool {
	d := now.Sub(l.start)
	return l.hold > 0 && d >= l.from && d < l.from+l.hold
}

// send takes the segment b from simNet and schedules it itself; it
// returns true so that simNet does not deliver it again.
func (l *stallLink) send(b []byte) bool {
	n := l.n
	now := n.clk.Now()
	dir, info, dst := 0, proto.PacketInfo{Src: simA, Dst: simB, Proto: wire.IPProtoTCP, IfIndex: 1, TTL: 64}, n.stacks[simB]
	if binary.BigEndian.Uint16(b[0:2]) == 80 { // from the listener's side
		dir, info.Src, info.Dst, dst = 1, simB, simA, n.stacks[simA]
	}
	at := laterOf(now, l.next[dir]).Add(time.Duration(float64(len(b)+34) / l.rate * float64(time.Second)))
	if l.queue > 0 && at.Sub(now) > time.Duration(float64(l.queue*(1500+14))/l.rate*float64(time.Second)) {
		l.drops++ // simNet counts it lost too
		return true
	}
	l.next[dir] = at
	at = at.Add(n.delay)
	if end := l.start.Add(l.from + l.hold); l.blackedOut(now) && at.Before(end) {
		at = end
	}
	c := append([]byte(nil), b...)
	n.clk.AfterFunc(at.Sub(now), func() { dst.HandlePacket(info, buf.FromBytes(c)) })
	n.lost-- // simNet counts what this returns true for as lost
	return true
}

// laterOf is the later of a and b.
func laterOf(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// stallRun moves size bytes from a to b over l and returns the virtual
// time it took. The reader does not read during the blackout.
func stallRun(t *testing.T, sp *simPair, l *stallLink, size int) time.Duration {
	t.Helper()
	n := sp.n
	w, r := newStream(sp.a, size, 1), newSink(sp.b)
	start := n.clk.Now()
	pump := func() bool {
		p := w.pump(t)
		if !l.blackedOut(n.clk.Now()) {
			p = r.pump(t) || p
		}
		return p
	}
	n.run(t, time.Minute, pump, func() bool { return r.n == size },
		func() string { return infoLine("a", sp.a) + infoLine("b", sp.b) })
	return n.clk.Now().Sub(start)
}

type stallCounts struct{ tlp, tlpRecovered, rto, fast, persist, retrans, undo, dsack uint64 }

func countsOf(p *Protocol) stallCounts {
	s := &p.stats
	return stallCounts{s.TLPProbes.Load(), s.TLPRecovered.Load(), s.Timeouts.Load(), s.FastRetrans.Load(),
		s.PersistProbes.Load(), s.RetransSegs.Load(), s.Undos.Load(), s.DSACKRecv.Load()}
}

// TestSimStarvedProcessSpuriousTLP: MTU 65535 at 5 GB/s, 40 µs RTT; the
// process stalls for 15 or 50 ms (both directions held, the reader idle)
// 20 ms into a 200 MB transfer. The probe goes out after 10 ms (PTO
// floor), spuriously; it must not reduce the window (the D-SACK or the
// ACK of new data tells it repaired nothing, §7.4), nor let an RTO or
// the persist timer fire, and the transfer must take no longer than the
// stall plus 2 ms over the same transfer without it. A send buffer all
// in flight makes the probe a retransmission of the last segment
// (§7.3), the case that needs the D-SACK: with TCP_NODELAY (as the
// socket layer sets it) the send buffer's tail goes out at once, so a
// writer that filled the buffer leaves nothing unsent.
func TestSimStarvedProcessSpuriousTLP(t *testing.T) {
	const size = 200 << 20
	for _, tc := range []struct {
		name    string
		noDelay bool
	}{
		{"new-data-probe", false},
		{"retransmitted-probe", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := func(hold time.Duration) (time.Duration, stallCounts, Info) {
				n := newSimNet(7)
				n.mtu, n.delay = 65535, 20*time.Microsecond
				sp := newSimPair(t, n, Options{NoDelay: tc.noDelay}, Options{})
				l := newStallLink(n, 5e9)
				l.start, l.from, l.hold = n.clk.Now(), 20*time.Millisecond, hold
				d := stallRun(t, sp, l, size)
				return d, countsOf(sp.pa), sp.a.Info()
			}
			base, bc, _ := run(0)
			if bc.tlp != 0 || bc.retrans != 0 {
				t.Fatalf("baseline: %+v", bc)
			}
			for _, hold := range []time.Duration{15 * time.Millisecond, 50 * time.Millisecond} {
				d, c, in := run(hold)
				t.Logf("hold %v: %v (baseline %v) %+v cwnd %d", hold, d, base, c, in.CWnd)
				if c.tlp == 0 {
					t.Errorf("hold %v: no tail loss probe: the test no longer makes one", hold)
				}
				if tc.noDelay && (c.retrans != 1 || c.dsack == 0) {
					t.Errorf("hold %v: want the probe to resend the last segment and a D-SACK for it: %+v", hold, c)
				}
				if c.tlpRecovered != 0 || c.rto != 0 || c.fast != 0 || c.persist != 0 || in.SSThresh != cc.MaxSSThresh {
					t.Errorf("hold %v: a spurious probe changed the congestion state: %+v ssthresh %d", hold, c, in.SSThresh)
				}
				if d > base+hold+2*time.Millisecond {
					t.Errorf("hold %v: took %v, want at most %v (stall + baseline %v)", hold, d, base+hold+2*time.Millisecond, base)
				}
			}
		})
	}
}

// TestSimQueueOverflowRecovery: MTU 1500 through an 800 MB/s link with a
// 512-frame drop-tail queue (the pipe's default), 100 MB. Cubic fills
// the queue and loses a burst now and then; each burst is repaired by
// SACK recovery without an RTO or a persist probe, no segment is sent
// again that was not dropped (beyond a probe or two), and the link stays
// at least 90% used.
func TestSimQueueOverflowRecovery(t *testing.T) {
	const size = 100 << 20
	n := newSimNet(11)
	n.mtu, n.delay = 1500, 20*time.Microsecond
	sp := newSimPair(t, n, Options{}, Options{})
	l := newStallLink(n, 8e8)
	l.queue = 512
	l.start = n.clk.Now()
	d := stallRun(t, sp, l, size)
	c := countsOf(sp.pa)
	rate := float64(size) / d.Seconds()
	desc := fmt.Sprintf("%v (%.0f MB/s), drops %d, %+v", d, rate/1e6, l.drops, c)
	t.Log(desc)
	if l.drops == 0 || c.fast == 0 {
		t.Fatalf("no queue overflow: the test no longer exercises recovery: %s", desc)
	}
	if c.rto != 0 || c.persist != 0 {
		t.Errorf("recovery waited on a timer: %s", desc)
	}
	if c.retrans > uint64(l.drops)+c.tlp {
		t.Errorf("more retransmitted than dropped: %s", desc)
	}
	if rate < 0.9*8e8*1448/1514 {
		t.Errorf("link under-used: %s", desc)
	}
}

// TestTLPInPlaceOfRTO: with one segment in flight the probe timeout (2·SRTT
// plus the worst-case delayed ACK) is not shorter than the RTO; RFC 8985
// §7.2 then schedules the probe at the RTO's time instead of leaving the
// tail to the RTO (which would collapse the window to one segment).
func TestTLPInPlaceOfRTO(t *testing.T) {
	e, p := dialPeer(t, defPeer)
	p.write("hello")
	p.expect(payloadIs("hello"))
	for range 50 {
		p.advance(10 * time.Millisecond)
		if out := p.take(); len(out) > 0 {
			if e.stat("tcp.tlp_probes") != 1 || e.stat("tcp.timeouts") != 0 {
				t.Fatalf("tail resent with tlp_probes %d, timeouts %d; want a probe, no RTO",
					e.stat("tcp.tlp_probes"), e.stat("tcp.timeouts"))
			}
			return
		}
	}
	t.Fatal("the lost tail was never resent")
}
