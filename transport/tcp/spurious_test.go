package tcp

import (
	"fmt"
	"testing"
	"time"

	"ustack/internal/seqnum"
)

// Tests that a path which duplicates or reorders segments, and loses
// none, costs no retransmissions, or only a few that are then undone:
// what counts as a duplicate ACK (RFC 5681 §2, RFC 6675 §2), which
// D-SACKs undo a congestion response (RFC 3708), and RACK's delivered
// segment, reordering detection and reordering window (RFC 8985 §6.2).

// TestOldACKIsNoDupAck: ACKs below snd.una (the network reordered or
// duplicated them) are not duplicate ACKs (RFC 5681 §2 (d)): three of
// them start no NewReno recovery; three real ones do.
func TestOldACKIsNoDupAck(t *testing.T) {
	e, p := dialPeer(t, peerOpts{mss: 1460, ws: 7, ts: true, options: Options{CongestionControl: "reno"}})
	segs := p.sendSegs(6)
	p.ack = segs[2].seq
	p.send()
	p.take()
	for range 3 {
		p.send(ackAt(segs[1].seq))
		p.expectNone()
	}
	if st := p.c.Info().CAState; st != "open" || e.stat("tcp.fast_retrans") != 0 {
		t.Fatalf("after three old ACKs: state %s, fast retransmits %d", st, e.stat("tcp.fast_retrans"))
	}
	for range 2 {
		p.send()
		p.expectNone()
	}
	p.send()
	p.expect(seqIs(segs[2].seq), dataLen(mss))
}

// TestFRTOIgnoresOldACK: after an RTO, an old ACK between the two ACKs
// F-RTO waits for is neither kind it decides on (RFC 5682 §2): it is no
// loss signal, and the timeout is still found spurious.
func TestFRTOIgnoresOldACK(t *testing.T) {
	e, p := dialPeer(t, peerOpts{mss: 1460, ws: 7, options: Options{NoDelay: true}})
	const smss = 1460
	p.write(string(make([]byte, 14*smss)))
	segs := p.expectN(10)
	before := p.c.Info()
	p.advance(300 * time.Millisecond)
	p.expect(seqIs(segs[0].seq), dataLen(smss))
	p.ack = segs[2].seq
	p.send()
	p.expectN(2) // step 2b: new data
	p.send(ackAt(segs[1].seq))
	p.expectNone()
	p.ack = segs[4].seq
	p.send()
	in := p.c.Info()
	if in.CAState != "open" || in.CWnd < before.CWnd || e.stat("tcp.spurious_rtos") != 1 {
		t.Fatalf("after F-RTO: %s cwnd %d (before %d) spurious RTOs %d", in.CAState, in.CWnd, before.CWnd,
			e.stat("tcp.spurious_rtos"))
	}
}

// TestDSACKOfNetworkDuplicateNoUndo: in a recovery from a real loss, a
// D-SACK for a segment that was never retransmitted (the network
// duplicated it) undoes nothing (RFC 3708 §2).
func TestDSACKOfNetworkDuplicateNoUndo(t *testing.T) {
	_, p := dialPeer(t, defPeer)
	segs := p.sendSegs(6)
	p.advance(100 * time.Millisecond)
	for i := 1; i <= 3; i++ {
		p.send(ackAt(segs[0].seq), sacks(segs[1].seq, segs[i].seq+mss))
	}
	p.expect(seqIs(segs[0].seq))
	// Segment 2 arrived twice: a D-SACK inside the second block (RFC
	// 2883 §4.2).
	p.send(ackAt(segs[0].seq), sacks(segs[2].seq, segs[2].seq+mss, segs[1].seq, segs[3].seq+mss))
	if in := p.c.Info(); in.Undos != 0 || in.CAState != "recovery" || in.DSACKDups != 1 {
		t.Fatalf("undos %d state %s D-SACKs %d", in.Undos, in.CAState, in.DSACKDups)
	}
}

// TestDSACKCopiedACKCountsOnce: two segments retransmitted; the ACK
// whose D-SACK reports the first arrives twice (the network duplicated
// it). That is one retransmission shown needless, not two: no undo until
// the second is reported too (RFC 3708).
func TestDSACKCopiedACKCountsOnce(t *testing.T) {
	_, p := dialPeer(t, defPeer)
	segs := p.sendSegs(8)
	before := p.c.Info()
	p.advance(100 * time.Millisecond)
	end := func(i int) seqnum.Value { return segs[i].seq + mss }
	// Segments 0 and 1 are missing, 2.. arrive: both are deemed lost and
	// retransmitted as the SACKs come.
	resent := map[seqnum.Value]bool{}
	for i := 4; i < 8 && !(resent[segs[0].seq] && resent[segs[1].seq]); i++ {
		p.send(ackAt(segs[0].seq), sacks(segs[2].seq, end(i)))
		for _, s := range p.take() {
			resent[s.seq] = true
		}
	}
	if !resent[segs[0].seq] || !resent[segs[1].seq] {
		t.Fatalf("retransmitted %v", resent)
	}
	// The original of segment 0 was late: the ACK covers it and reports
	// the retransmission duplicate. Twice.
	p.ack = segs[1].seq
	for range 2 {
		p.send(sacks(segs[0].seq, end(0), segs[2].seq, end(7)))
	}
	if in := p.c.Info(); in.Undos != 0 {
		t.Fatalf("undone after one of two retransmissions was reported duplicate (undos %d)", in.Undos)
	}
	p.ack = end(7)
	p.send(sacks(segs[1].seq, end(1)))
	// Undone (cc.Controller.Undo): the window and threshold from before.
	if in := p.c.Info(); in.Undos != 1 || in.CAState != "open" || in.CWnd < before.CWnd || in.SSThresh != before.SSThresh {
		t.Fatalf("after both were reported duplicate: undos %d state %s cwnd %d ssthresh %d; before cwnd %d ssthresh %d",
			in.Undos, in.CAState, in.CWnd, in.SSThresh, before.CWnd, before.SSThresh)
	}
}

// TestRACKFirstDSACKWidensWindow: the first D-SACK doubles the reordering
// window, from min_RTT/4 to 2·min_RTT/4 (RFC 8985 §6.2 step 4:
// reo_wnd_mult starts at 1 and grows by one).
func TestRACKFirstDSACKWidensWindow(t *testing.T) {
	_, p := dialPeer(t, defPeer) // min_RTT 100 ms
	segs := p.sendSegs(4)
	p.advance(100 * time.Millisecond)
	p.ack = segs[3].seq + mss
	p.send(sacks(segs[0].seq, segs[0].seq+mss)) // segment 0 arrived twice
	segs = p.sendSegs(4)
	p.advance(100 * time.Millisecond)
	p.send(ackAt(segs[0].seq), sacks(segs[1].seq, segs[1].seq+mss))
	p.advance(49 * time.Millisecond) // past min_RTT/4, within 2·min_RTT/4
	p.expectNone()
	p.advance(time.Millisecond)
	p.expect(seqIs(segs[0].seq), dataLen(mss))
}

// TestRACKReorderingFromOneACK: one ACK that acknowledges low segments
// cumulatively and SACKs a higher one shows a hole, not reordering; a
// segment delivered after a higher one was SACKed by an earlier ACK is
// reordering (RFC 8985 §6.2 step 3).
func TestRACKReorderingFromOneACK(t *testing.T) {
	_, p := dialPeer(t, defPeer)
	segs := p.sendSegs(5)
	p.advance(100 * time.Millisecond)
	p.send(ackAt(segs[2].seq), sacks(segs[3].seq, segs[3].seq+mss))
	if p.c.Info().Reordering {
		t.Fatal("reordering seen in an ACK with a hole")
	}
	p.send(ackAt(segs[4].seq))
	if !p.c.Info().Reordering {
		t.Fatal("segment 2 delivered after segment 3: reordering not seen")
	}
}

// TestRACKIgnoresACKOfOriginal: a retransmitted segment acknowledged by
// an ACK that echoes the original's timestamp was delivered by the
// original: RACK.xmit_ts does not move to the retransmission's time (RFC
// 8985 §6.2 step 2), even when the ACK comes more than min_RTT after it.
func TestRACKIgnoresACKOfOriginal(t *testing.T) {
	_, p := dialPeer(t, defPeer)
	t0 := p.e.clk.Now()
	segs := p.sendSegs(5)
	p.advance(100 * time.Millisecond)
	for i := 1; i <= 3; i++ {
		p.send(ackAt(segs[0].seq), sacks(segs[1].seq, segs[i].seq+mss))
	}
	p.expect(seqIs(segs[0].seq)) // sent again at t0+100ms
	p.advance(150 * time.Millisecond)
	p.ack = segs[4].seq
	p.send(func(s *seg) { s.opts.TSEcr = segs[0].opts.TSVal })
	p.c.mu.Lock()
	xmit := p.c.rack.xmit
	p.c.mu.Unlock()
	if !xmit.Equal(t0) {
		t.Fatalf("RACK.xmit_ts %v after t0, want t0 (the originals)", xmit.Sub(t0))
	}
}

// TestRACKRTTFromLatestSent: RACK.rtt comes from the most recently sent
// of the segments an ACK delivers, not from the highest in sequence (RFC
// 8985 §6.2 step 2).
func TestRACKRTTFromLatestSent(t *testing.T) {
	_, p := dialPeer(t, peerOpts{mss: 1460, ws: 7, sack: true, ts: true, synRTT: 100 * time.Millisecond,
		options: Options{NoDelay: true}})
	segs := p.sendSegs(4) // at t0
	p.advance(50 * time.Millisecond)
	p.ack = segs[1].seq
	p.send()
	p.take()
	more := p.sendSegs(2) // at t0+50ms
	p.advance(100 * time.Millisecond)
	// Delivered now: segment 1 (cumulatively, sent at t0) and the second
	// new one (SACKed, sent at t0+50ms).
	p.send(ackAt(segs[2].seq), sacks(more[1].seq, more[1].seq+mss))
	p.c.mu.Lock()
	rtt := p.c.rack.rtt
	p.c.mu.Unlock()
	if rtt != 100*time.Millisecond {
		t.Fatalf("RACK.rtt %v, want 100ms (the segment sent last)", rtt)
	}
}

// TestPAWSOldACKNoReply: a pure ACK that fails PAWS (RFC 7323 §5.3) is
// dropped without an ACK in reply: the peer would take that reply for a
// duplicate ACK. Data that fails PAWS is still answered.
func TestPAWSOldACKNoReply(t *testing.T) {
	e, p := dialPeer(t, defPeer)
	p.tsval = 8000
	p.send(data("new"))
	p.take()
	p.send(tsVal(7000)) // a second older than TS.Recent: not a disordered ACK
	p.send(tsVal(7999), window(p.wnd-1))
	p.expectNone()
	if e.stat("tcp.paws_drops") != 2 {
		t.Fatalf("paws_drops %d", e.stat("tcp.paws_drops"))
	}
	p.send(data("old"), tsVal(7999))
	p.expect(isFlags(fACK), ackIs(p.seq-3))
}

// TestPAWSDisorderedDupAck: a duplicate ACK overtaken by a later one
// fails PAWS by its timestamp, yet its SACK blocks are news: it is taken
// (without touching TS.Recent, snd.una or the window).
func TestPAWSDisorderedDupAck(t *testing.T) {
	e, p := dialPeer(t, defPeer)
	segs := p.sendSegs(5)
	p.advance(100 * time.Millisecond)
	p.send(ackAt(segs[0].seq), tsVal(8001), sacks(segs[2].seq, segs[2].seq+mss))
	p.send(ackAt(segs[0].seq), tsVal(8000), sacks(segs[1].seq, segs[1].seq+mss))
	p.expectNone()
	if in := p.c.Info(); in.SACKed != 2*mss || e.stat("tcp.disordered_acks") != 1 || e.stat("tcp.paws_drops") != 0 {
		t.Fatalf("SACKed %d, disordered ACKs %d, PAWS drops %d", in.SACKed, e.stat("tcp.disordered_acks"), e.stat("tcp.paws_drops"))
	}
	p.c.mu.Lock()
	recent := p.c.tsRecent
	p.c.mu.Unlock()
	if recent != 8001 {
		t.Fatalf("TS.Recent %d, want 8001", recent)
	}
}

// simImpaired runs size bytes each way between two stacks over a path of
// the given one-way delay, impaired by set once connected, and returns
// the two connections.
func simImpaired(t *testing.T, seed uint64, delay time.Duration, size int, tune func(p *Protocol), set func(n *simNet)) (*simPair, string) {
	t.Helper()
	n := newSimNet(seed)
	n.delay = delay
	n.tune = tune
	sp := newSimPair(t, n, Options{}, Options{})
	set(n)
	sp.transfer(t, size, time.Hour)
	desc := fmt.Sprintf("net: sent %d lost %d duplicated %d reordered %d", n.sent, n.lost, n.duped, n.reordered)
	for _, c := range []*Conn{sp.a, sp.b} {
		in := c.Info()
		desc += fmt.Sprintf("\n  %v: retrans %d recoveries %d undos %d D-SACKs %d timeouts %d", c.LocalAddr(),
			in.TotalRetrans, c.p.stats.FastRetrans.Load(), in.Undos, in.DSACKDups, c.p.stats.Timeouts.Load())
	}
	return sp, desc
}

// TestSimDuplicationNoRetransmission: a path that duplicates 1% or 10% of
// the segments each way, data and ACKs alike, and loses none costs no
// retransmission with SACK: a copy of an ACK newly SACKs nothing and a
// D-SACK is no loss signal. Without SACK a run of three copied ACKs is a
// fast retransmission, rare, and then undone by the timestamps (RFC 3522).
func TestSimDuplicationNoRetransmission(t *testing.T) {
	noSACK := func(p *Protocol) { p.tun.SACK.Store(false) }
	for _, tc := range []struct {
		name string
		dup  float64
		tune func(p *Protocol)
		max  uint64 // retransmissions allowed per end
	}{
		{"dup1", 0.01, nil, 0},
		{"dup10", 0.10, nil, 0},
		{"dup10-nosack", 0.10, noSACK, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for seed := uint64(1); seed <= 3; seed++ {
				sp, desc := simImpaired(t, seed, time.Millisecond, 2<<20, tc.tune, func(n *simNet) { n.dup = tc.dup })
				for _, c := range []*Conn{sp.a, sp.b} {
					in := c.Info()
					fast := c.p.stats.FastRetrans.Load()
					if in.TotalRetrans > tc.max || c.p.stats.Timeouts.Load() != 0 || in.Undos != fast {
						t.Fatalf("seed %d: %s", seed, desc)
					}
					if tc.tune == nil && in.DSACKDups == 0 {
						t.Fatalf("seed %d: no D-SACK for the duplicates: %s", seed, desc)
					}
				}
			}
		})
	}
}

// TestSimReorderingAbsorbed: 5% of the segments each way delayed by up to
// 4 ms more, on a 10 ms RTT, and none lost. RACK's reordering window
// starts at min_RTT/4 = 2.5 ms, so until the first D-SACK a reordered
// segment may be retransmitted (and the episode undone); the D-SACK
// widens the window to 5 ms, past any delay here, and retransmissions
// stop. Bound: 6 per end (seen: 1 or 2), each episode undone.
func TestSimReorderingAbsorbed(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		sp, desc := simImpaired(t, seed, 5*time.Millisecond, 2<<20, nil, func(n *simNet) {
			n.reorder, n.extra = 0.05, 4*time.Millisecond
		})
		for _, c := range []*Conn{sp.a, sp.b} {
			in := c.Info()
			if in.TotalRetrans > 6 || in.Undos != c.p.stats.FastRetrans.Load() || c.p.stats.Timeouts.Load() != 0 {
				t.Fatalf("seed %d: %s", seed, desc)
			}
		}
		if testing.Verbose() {
			t.Logf("seed %d: %s", seed, desc)
		}
	}
}

// TestSimReorderingBeyondRTT: reordering by up to 4 ms on a 2 ms RTT is
// more than RACK's window may grow to (SRTT, RFC 8985 §6.2 step 4), so
// some reordered segments are retransmitted, and no RTO fires. The
// episodes are undone, by D-SACK or timestamps: at least 90% of them (seen:
// 93-100%). Not all: an ACK that carries a D-SACK and is overtaken by a
// later ACK fails PAWS and is dropped (RFC 7323 §5.3; only a duplicate ACK
// is taken anyway, see disorderedAck), and a segment retransmitted twice
// needs two D-SACKs.
func TestSimReorderingBeyondRTT(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		sp, desc := simImpaired(t, seed, time.Millisecond, 2<<20, nil, func(n *simNet) {
			n.reorder, n.extra = 0.05, 4*time.Millisecond
		})
		for _, c := range []*Conn{sp.a, sp.b} {
			in := c.Info()
			if in.Undos*10 < c.p.stats.FastRetrans.Load()*9 || c.p.stats.Timeouts.Load() != 0 || !in.Reordering {
				t.Fatalf("seed %d: %s", seed, desc)
			}
		}
		if testing.Verbose() {
			t.Logf("seed %d: %s", seed, desc)
		}
	}
}
