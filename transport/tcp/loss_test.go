package tcp

import (
	"errors"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"ustack/internal/seqnum"
	"ustack/proto"
	"ustack/wire"
)

// Engine tests of loss recovery: RTO (RFC 6298), fast retransmit and
// NewReno (RFC 6582), SACK recovery with PRR (RFC 6675, RFC 6937),
// RACK-TLP (RFC 8985), undo (RFC 3522, RFC 3708), path MTU (RFC 1191).
// dialPeer's handshake leaves SRTT 100 ms, RTTVAR 50 ms: RTO 300 ms.

const mss = 1448 // 1460 less the timestamp option

// sendSegs writes n full segments and takes them.
func (p *tpeer) sendSegs(n int) []sentSeg {
	p.t.Helper()
	p.write(strings.Repeat("d", n*mss))
	out := p.take()
	if len(out) != n {
		p.t.Fatalf("sent %d segments, want %d:\n%s", len(out), n, fmtSegs(out))
	}
	return out
}

func TestRTOBackoff(t *testing.T) {
	e, p := dialPeer(t, peerOpts{mss: 1460, ws: 7, ts: true}) // no SACK: no TLP
	e.p.tun.Retries2.Store(3)
	p.write("x")
	first := p.expect(dataLen(1))
	for _, d := range []time.Duration{300 * time.Millisecond, 600 * time.Millisecond, 1200 * time.Millisecond} {
		p.advance(d - time.Millisecond)
		p.expectNone()
		p.advance(time.Millisecond)
		p.expect(seqIs(first.seq), dataLen(1))
		if in := p.c.Info(); in.CWnd != mss || in.CAState != "loss" {
			t.Fatalf("after the RTO: cwnd %d state %s, want %d loss (RFC 5681 §3.1)", in.CWnd, in.CAState, mss)
		}
	}
	if in := p.c.Info(); in.Backoff != 3 || in.RTO != 2400*time.Millisecond || in.TotalRetrans != 3 {
		t.Fatalf("Info: backoff %d RTO %v retrans %d", in.Backoff, in.RTO, in.TotalRetrans)
	}
	// net.inet.tcp.retries2 = 3: the next expiry drops the connection.
	p.advance(2400 * time.Millisecond)
	if p.c.state() != StateClosed || !errors.Is(p.c.Err(), syscall.ETIMEDOUT) {
		t.Fatalf("state %v err %v", p.c.state(), p.c.Err())
	}
	if e.stat("tcp.timeouts") != 3 || e.stat("tcp.retrans_drops") != 1 {
		t.Errorf("timeouts %d retrans_drops %d", e.stat("tcp.timeouts"), e.stat("tcp.retrans_drops"))
	}
}

// TestRTOAckResetsBackoff: new data acknowledged ends the backoff (RFC
// 6298 §5.7 via a new RTT sample) and the window grows from one segment.
func TestRTOAckResetsBackoff(t *testing.T) {
	_, p := dialPeer(t, peerOpts{mss: 1460, ws: 7, ts: true})
	p.sendSegs(2)
	p.advance(300 * time.Millisecond)
	p.expect(seqIs(p.ack), dataLen(mss))
	p.advance(600 * time.Millisecond)
	p.expect(seqIs(p.ack), dataLen(mss))
	p.ack += mss
	p.send()
	// Loss state: the second segment is deemed lost and goes next.
	p.expect(seqIs(p.ack), dataLen(mss))
	if in := p.c.Info(); in.Backoff != 0 || in.RTO >= 600*time.Millisecond {
		t.Fatalf("backoff %d RTO %v", in.Backoff, in.RTO)
	}
}

func TestUserTimeout(t *testing.T) {
	e, p := dialPeer(t, peerOpts{mss: 1460, ws: 7, ts: true})
	p.c.SetUserTimeout(1 * time.Second)
	p.write("x")
	p.take()
	p.advance(900 * time.Millisecond) // RTOs at 300 and 900 ms
	p.expectN(2)
	p.advance(100 * time.Millisecond) // clamped to the user timeout
	if p.c.state() != StateClosed || !errors.Is(p.c.Err(), syscall.ETIMEDOUT) {
		t.Fatalf("state %v err %v", p.c.state(), p.c.Err())
	}
	p.expect(isFlags(fRST))
	if e.stat("tcp.user_timeout_drops") != 1 {
		t.Errorf("user_timeout_drops %d", e.stat("tcp.user_timeout_drops"))
	}
}

// TestFastRetransmitNewReno: without SACK, the third duplicate ACK
// retransmits (RFC 5681 §3.2); a partial ACK retransmits the next hole
// (RFC 6582 §3.2); the full ACK ends recovery at ssthresh.
func TestFastRetransmitNewReno(t *testing.T) {
	e, p := dialPeer(t, peerOpts{mss: 1460, ws: 7, ts: true, options: Options{CongestionControl: "reno"}})
	segs := p.sendSegs(6)
	p.ack = segs[1].seq // the first arrived, the second and third are lost
	p.send()
	p.take()
	for i := 0; i < 2; i++ {
		p.send()
		p.expectNone()
	}
	p.send()
	p.expect(seqIs(segs[1].seq), dataLen(mss))
	if in := p.c.Info(); in.CAState != "recovery" || in.SSThresh != 5*mss/2 {
		// ssthresh = FlightSize/2 (RFC 5681 eqn. 4): 5 segments in flight.
		t.Fatalf("state %s ssthresh %d, want recovery %d", in.CAState, in.SSThresh, 5*mss/2)
	}
	// Partial ACK: the third segment is the next hole.
	p.ack = segs[2].seq
	p.send()
	out := p.take()
	if len(out) == 0 || out[0].seq != segs[2].seq {
		t.Fatalf("after the partial ACK:\n%s", fmtSegs(out))
	}
	p.ack = segs[5].seq + mss
	p.send()
	if in := p.c.Info(); in.CAState != "open" || in.CWnd != in.SSThresh {
		t.Fatalf("after recovery: %s cwnd %d ssthresh %d", in.CAState, in.CWnd, in.SSThresh)
	}
	if e.stat("tcp.reno_recovery") != 1 || e.stat("tcp.fast_retrans") != 1 {
		t.Errorf("reno_recovery %d", e.stat("tcp.reno_recovery"))
	}
}

// TestSACKRecoveryPRR: a SACK scoreboard drives the retransmissions
// (RFC 6675) and PRR (RFC 6937) paces what goes out during recovery:
// about ssthresh/RecoverFS of what is delivered, so the flight lands on
// ssthresh at the end of recovery.
func TestSACKRecoveryPRR(t *testing.T) {
	e, p := dialPeer(t, peerOpts{mss: 1460, ws: 7, ts: true, sack: true, options: Options{CongestionControl: "reno"}})
	p.write(strings.Repeat("d", 30*mss))
	segs := p.take() // the initial window: 10 segments
	if len(segs) != 10 {
		t.Fatalf("sent %d segments", len(segs))
	}
	una := segs[0].seq
	end := func(i int) seqnum.Value { return segs[i].seq + mss }
	// Segment 0 is lost; 1..9 arrive and are SACKed one by one. The
	// first two SACKs each let a new segment out (pipe shrinks: limited
	// transmit, RFC 3042 in RFC 6675's terms).
	for i := 1; i <= 2; i++ {
		p.send(ackAt(una), sacks(segs[1].seq, end(i)))
		p.expect(seqIs(segs[9].seq+seqnum.Value(i*mss)), dataLen(mss))
	}
	// The third: the hole is lost (RACK with DupThresh SACKed segments
	// above it, RFC 8985 §6.2), recovery, and the hole goes first.
	p.send(ackAt(una), sacks(segs[1].seq, end(3)))
	p.expect(seqIs(una), dataLen(mss))
	// PRR (RFC 6937 §3): RecoverFS 12 segments, ssthresh 6: one segment
	// out per two delivered while pipe > ssthresh; once pipe is down to
	// ssthresh (the seventh ACK), PRR-SSRB sends what keeps it there.
	var pattern []int
	for i := 4; i < 10; i++ {
		p.send(ackAt(una), sacks(segs[1].seq, end(i)))
		pattern = append(pattern, len(p.take()))
	}
	if want := []int{0, 1, 0, 0, 1, 1}; !slices.Equal(pattern, want) {
		t.Fatalf("segments sent per ACK in recovery %v, want %v", pattern, want)
	}
	in := p.c.Info()
	if in.CAState != "recovery" || in.SSThresh != 6*mss {
		t.Fatalf("state %s ssthresh %d", in.CAState, in.SSThresh)
	}
	// The cumulative ACK past the recovery point ends recovery.
	p.ack = p.nxt()
	p.send()
	// cwnd is ssthresh (RFC 6937), and this ACK's bytes count toward
	// congestion avoidance.
	if in := p.c.Info(); in.CAState != "open" || in.CWnd < 6*mss || in.CWnd > 7*mss {
		t.Fatalf("after recovery: %s cwnd %d", in.CAState, in.CWnd)
	}
	if e.stat("tcp.sack_recovery") != 1 {
		t.Errorf("sack_recovery %d", e.stat("tcp.sack_recovery"))
	}
}

// TestRACKReorderingWindow: a segment overtaken by the next one is not
// retransmitted while the reordering window (min_RTT/4) lasts (RFC 8985
// §6.2); when it expires without the segment, it is.
func TestRACKReorderingWindow(t *testing.T) {
	for _, arrives := range []bool{true, false} {
		_, p := dialPeer(t, defPeer)
		segs := p.sendSegs(4)
		p.advance(100 * time.Millisecond)
		// Segment 1 arrives before segment 0.
		p.send(ackAt(segs[0].seq), sacks(segs[1].seq, segs[1].seq+mss))
		p.expectNone()
		p.advance(20 * time.Millisecond) // within min_RTT/4 = 25 ms
		p.expectNone()
		if arrives {
			p.ack = segs[3].seq + mss
			p.send()
			p.advance(time.Second)
			for _, s := range p.take() {
				if s.seq == segs[0].seq && len(s.payload) > 0 {
					t.Fatal("segment 0 retransmitted after arriving late")
				}
			}
			if in := p.c.Info(); in.TotalRetrans != 0 || in.CAState != "open" {
				t.Fatalf("retransmissions %d state %s", in.TotalRetrans, in.CAState)
			}
			continue
		}
		p.advance(5 * time.Millisecond)
		p.expect(seqIs(segs[0].seq), dataLen(mss))
		if st := p.c.Info().CAState; st != "recovery" {
			t.Fatalf("state %s after the reordering window", st)
		}
	}
}

// TestRACKDupThresh: three segments SACKed above a hole mark it lost at
// once (reordering window 0 before any reordering is seen).
func TestRACKDupThresh(t *testing.T) {
	_, p := dialPeer(t, defPeer)
	segs := p.sendSegs(5)
	p.advance(100 * time.Millisecond)
	p.send(ackAt(segs[0].seq), sacks(segs[1].seq, segs[1].seq+mss))
	p.send(ackAt(segs[0].seq), sacks(segs[1].seq, segs[2].seq+mss))
	p.expectNone()
	p.send(ackAt(segs[0].seq), sacks(segs[1].seq, segs[3].seq+mss))
	p.expect(seqIs(segs[0].seq), dataLen(mss))
}

// TestTLP: when the ACKs stop with segments outstanding, a probe goes
// after 2·SRTT: new data if there is some, else the last segment (RFC
// 8985 §7.3); its SACK shows the tail loss.
func TestTLP(t *testing.T) {
	e, p := dialPeer(t, defPeer)
	segs := p.sendSegs(4)
	p.advance(100 * time.Millisecond)
	p.ack = segs[2].seq // two arrived; the last two are lost
	p.send()
	p.expectNone()
	p.advance(200*time.Millisecond - time.Millisecond) // PTO = 2·SRTT
	p.expectNone()
	p.advance(time.Millisecond)
	probe := p.expect(seqIs(segs[3].seq), dataLen(mss))
	if e.stat("tcp.tlp_probes") != 1 {
		t.Fatalf("tlp_probes %d", e.stat("tcp.tlp_probes"))
	}
	// The probe's SACK, an RTT later, reveals segment 2 as lost:
	// recovery, not an RTO.
	p.advance(100 * time.Millisecond)
	p.send(ackAt(segs[2].seq), sacks(probe.seq, probe.seq+mss))
	p.expect(seqIs(segs[2].seq), dataLen(mss))
	if e.stat("tcp.timeouts") != 0 {
		t.Error("an RTO happened")
	}
}

// TestTLPNewData: with unsent data the probe is new data.
func TestTLPNewData(t *testing.T) {
	_, p := dialPeer(t, defPeer)
	p.write(strings.Repeat("d", 12*mss)) // 10 go (the initial window)
	segs := p.expectN(10)
	p.advance(200 * time.Millisecond)
	// The probe fired at 2·SRTT with one new segment.
	p.expect(seqIs(segs[9].seq+mss), dataLen(mss))
}

// TestSpuriousRTOUndo: an RTO retransmission whose ACK echoes the
// original's timestamp shows the original arrived (Eifel, RFC 3522): the
// window comes back.
func TestSpuriousRTOUndo(t *testing.T) {
	e, p := dialPeer(t, peerOpts{mss: 1460, ws: 7, ts: true})
	segs := p.sendSegs(4)
	before := p.c.Info()
	p.advance(300 * time.Millisecond)
	p.expect(seqIs(segs[0].seq))
	if in := p.c.Info(); in.CWnd != mss {
		t.Fatalf("cwnd %d after the RTO", in.CWnd)
	}
	// The ACK of the originals, late: it echoes their TSval.
	p.ecr = segs[0].opts.TSVal
	p.ack = segs[3].seq + mss
	p.send()
	in := p.c.Info()
	if in.CWnd < before.CWnd || in.SSThresh != before.SSThresh || in.CAState != "open" || in.Undos != 1 {
		t.Fatalf("after undo: cwnd %d ssthresh %d state %s undos %d; before cwnd %d ssthresh %d",
			in.CWnd, in.SSThresh, in.CAState, in.Undos, before.CWnd, before.SSThresh)
	}
	if e.stat("tcp.spurious_rtos") != 1 {
		t.Errorf("spurious_rtos %d", e.stat("tcp.spurious_rtos"))
	}
}

// TestDSACKUndo: every retransmission of a recovery reported duplicate
// by D-SACK (RFC 3708): the reduction is undone.
func TestDSACKUndo(t *testing.T) {
	_, p := dialPeer(t, defPeer)
	segs := p.sendSegs(5)
	p.advance(100 * time.Millisecond)
	for i := 1; i <= 3; i++ {
		p.send(ackAt(segs[0].seq), sacks(segs[1].seq, segs[i].seq+mss))
	}
	p.expect(seqIs(segs[0].seq)) // retransmitted: recovery
	if st := p.c.Info().CAState; st != "recovery" {
		t.Fatalf("state %s", st)
	}
	// The original was only delayed: the ACK covers all, with a D-SACK
	// for the retransmission.
	p.ack = segs[4].seq + mss
	p.send(sacks(segs[0].seq, segs[0].seq+mss))
	if in := p.c.Info(); in.Undos != 1 || in.DSACKDups != 1 {
		t.Fatalf("undos %d dsacks %d", in.Undos, in.DSACKDups)
	}
}

// TestFragNeeded: an ICMP error lowers the MSS and the segments in
// flight are sent again to size (RFC 1191 §6.5), without a congestion
// response; an error quoting a sequence number outside [snd.una,
// snd.nxt) is ignored (RFC 5927 §4.1).
func TestFragNeeded(t *testing.T) {
	e, p := dialPeer(t, defPeer)
	segs := p.sendSegs(2)
	cwnd := p.c.Info().CWnd
	icmp := func(seq seqnum.Value, mtu int) {
		f := wire.TCPFields{SrcPort: p.local.Port(), DstPort: peerAddr.Port(), Seq: uint32(seq)}
		var h [20]byte
		f.Encode(h[:])
		e.p.HandleError(&proto.ICMPError{Kind: proto.ErrFragNeeded, MTU: mtu, Src: p.local.Addr(),
			Dst: peerAddr.Addr(), Proto: wire.IPProtoTCP, Quote: h[:8]})
	}
	icmp(segs[0].seq-100000, 1000)
	if p.c.Info().PMTU != 1500 || e.stat("tcp.icmp_ignored") != 1 {
		t.Fatal("an error with a bad sequence number was taken")
	}
	icmp(segs[0].seq, 1000)
	in := p.c.Info()
	if in.PMTU != 1000 || in.MSS != 1000-40-12 {
		t.Fatalf("PMTU %d MSS %d", in.PMTU, in.MSS)
	}
	out := p.take()
	if len(out) != 4 {
		t.Fatalf("resent:\n%s", fmtSegs(out))
	}
	next := segs[0].seq
	for i, s := range out {
		if len(s.payload) > 948 || s.seq != next {
			t.Fatalf("segment %d: %s", i, fmtSeg(s))
		}
		next += seqnum.Value(len(s.payload))
	}
	if in.CWnd != cwnd || in.CAState != "open" {
		t.Fatalf("cwnd %d (was %d) state %s: no congestion response wanted", in.CWnd, cwnd, in.CAState)
	}
}

func TestDSACKGeneration(t *testing.T) {
	_, p := dialPeer(t, defPeer)
	p.send(data("0123456789"))
	p.take()
	// An old duplicate of what was received: D-SACK (RFC 2883 §4.1).
	p.seq -= 10
	p.send(data("0123456789"))
	p.expect(isFlags(fACK), ackIs(p.seq), sackIs(p.seq-10, p.seq))
	// Out-of-order data, then a duplicate of it: the D-SACK block, then
	// the block that holds it (RFC 2883 §4.2).
	hole := p.seq
	p.seq += 100
	p.send(data("abcdefghij"))
	p.expect(sackIs(hole+100, hole+110))
	p.seq -= 10
	p.send(data("abcdefghij"))
	p.expect(sackIs(hole+100, hole+110, hole+100, hole+110))
}

func TestSACKBlocksGenerated(t *testing.T) {
	_, p := dialPeer(t, defPeer)
	base := p.seq
	for _, off := range []seqnum.Value{100, 300, 500, 700} {
		p.send(data("xxxxxxxxxx"), seqAt(base+off))
	}
	// The most recent block first; at most 3 beside timestamps (RFC 2018 §3).
	out := p.expectN(4)
	checkSeg(t, out[3], sackIs(base+700, base+710, base+500, base+510, base+300, base+310))
	// Filling up to the first: the first block merges into the data.
	p.send(bytesN(100), seqAt(base))
	p.expect(ackIs(base+110), sackIs(base+700, base+710, base+500, base+510, base+300, base+310))
}

// TestFRTO: without timestamps, F-RTO (RFC 5682 §2) tells a spurious RTO
// by the two ACKs after it: both acknowledge new data, so the sender had
// sent new data instead of retransmitting, and the window comes back.
func TestFRTO(t *testing.T) {
	e, p := dialPeer(t, peerOpts{mss: 1460, ws: 7, options: Options{NoDelay: true}})
	const smss = 1460
	p.write(strings.Repeat("d", 14*smss))
	segs := p.expectN(10)
	before := p.c.Info()
	p.advance(300 * time.Millisecond)
	p.expect(seqIs(segs[0].seq), dataLen(smss)) // step 1: the first segment only
	// The first ACK acknowledges the originals of 0 and 1: new data goes
	// out, not retransmissions (step 2b).
	p.ack = segs[2].seq
	p.send()
	out := p.expectN(2)
	if out[0].seq != segs[9].seq+smss || out[1].seq != out[0].seq+smss {
		t.Fatalf("step 2b sent:\n%s", fmtSegs(out))
	}
	// The second acknowledges more: spurious (step 3b).
	p.ack = segs[4].seq
	p.send()
	in := p.c.Info()
	if in.CAState != "open" || in.CWnd < before.CWnd || in.SSThresh != before.SSThresh || e.stat("tcp.spurious_rtos") != 1 {
		t.Fatalf("after F-RTO: %s cwnd %d ssthresh %d; before cwnd %d", in.CAState, in.CWnd, in.SSThresh, before.CWnd)
	}
}

// TestFRTOLoss: a duplicate ACK after the RTO means real loss: the
// conventional retransmissions follow (RFC 5682 step 3a).
func TestFRTOLoss(t *testing.T) {
	_, p := dialPeer(t, peerOpts{mss: 1460, ws: 7, options: Options{NoDelay: true}})
	const smss = 1460
	p.write(strings.Repeat("d", 14*smss))
	segs := p.expectN(10)
	p.advance(300 * time.Millisecond)
	p.take()
	p.ack = segs[1].seq
	p.send()
	p.expectN(2) // step 2b: new data
	p.send()     // a duplicate: the second segment was lost
	// Retransmissions from the hole on (the duplicate ACK counts as a
	// segment gone from the network, so two fit in the loss window).
	out := p.take()
	if len(out) == 0 || len(out) > 3 || out[0].seq != segs[1].seq || out[len(out)-1].seq > segs[9].seq {
		t.Fatalf("after the duplicate ACK:\n%s", fmtSegs(out))
	}
	if st := p.c.Info().CAState; st != "loss" {
		t.Fatalf("state %s", st)
	}
}
