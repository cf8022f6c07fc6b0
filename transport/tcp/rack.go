package tcp

import (
	"time"

	"ustack/internal/seqnum"
	"ustack/transport/tcp/cc"
)

// RACK-TLP (RFC 8985): a segment is deemed lost when a segment sent after
// it has been delivered and more than an RTT plus a reordering window has
// passed since it was sent; a tail loss probe retransmits (or sends new
// data) when the ACK stream stops, so a loss at the end of a flight is
// found by SACK rather than by the retransmission timer.

type rackState struct {
	xmit   time.Time    // RACK.xmit_ts: latest send time of a delivered segment
	txn    uint64       // its transmission order (RACK.end_seq's role in ties)
	endSeq seqnum.Value // RACK.end_seq
	rtt    time.Duration
	valid  bool

	fack      seqnum.Value // RACK.fack: highest end delivered
	fackOK    bool
	reordSeen bool // RACK.reordering_seen

	reoMult    int // RACK.reo_wnd_mult
	reoPersist int // RACK.reo_wnd_persist
	dsackRound seqnum.Value
	dsackSeen  bool

	// Tail loss probe (§7).
	tlpActive  bool
	tlpRetrans bool         // the probe was a retransmission
	tlpEnd     seqnum.Value // TLP.end_seq: snd.nxt when the probe went
	tlpSeq     seqnum.Value // the probe's range
	tlpLen     int
}

// wcDelAck is RFC 8985's WCDelAckT: the worst-case delayed-ACK time.
const wcDelAck = 200 * time.Millisecond

// reoPersistRounds is how many recoveries the reordering window stays
// widened after a D-SACK (§6.2 step 4).
const reoPersistRounds = 16

// rackUpdate takes one newly delivered segment (§6.2 steps 2 and 3). The
// segments of one ACK come in sequence order, not in the order they were
// sent, so step 2's choice is made over the whole ACK (ev.rack) and taken
// by rackCommit once the ACK's segments are all accounted.
func (c *Conn) rackUpdate(ev *ackEvent, s *txSeg) {
	r := &c.rack
	// Step 3 (RACK_detect_reordering): a segment never retransmitted
	// delivered below the highest end delivered by an earlier ACK was
	// overtaken. Comparing with RACK.fack as it stood before this ACK is
	// what the RFC's ascending walk over the ACK's segments amounts to: a
	// lower segment acknowledged cumulatively in the same ACK as a higher
	// one SACKed was not reordered.
	if ev.fackOK && s.end.LessThan(ev.fack) && !s.has(sfEverRetrans) {
		r.reordSeen = true
	}
	if !r.fackOK || s.end.GreaterThan(r.fack) {
		r.fack, r.fackOK = s.end, true
	}
	// Step 2: a retransmitted segment counts only when the ACK is for
	// the retransmission: it echoes a timestamp no older than the
	// retransmission's, and it came at least min_RTT after it (else it
	// may be for the original, and RACK.xmit_ts would jump forward).
	rtt := ev.now.Sub(s.xmit)
	if s.has(sfEverRetrans) {
		if ev.hasEcr && int32(ev.ecr-c.tsNow(s.xmit)) < 0 {
			return
		}
		if rtt < c.rtt.minRTT {
			return
		}
	}
	// RACK.rtt is that of the most recently sent of the ACK's segments
	// (the last of the RFC's walk in xmit_ts order).
	x := &ev.rack
	if !x.ok || sentAfter(s, x.xmit, x.txn) {
		x.xmit, x.txn, x.end, x.rtt, x.ok = s.xmit, s.txn, s.end, rtt, true
	}
}

// rackCommit ends step 2 for one ACK: RACK.rtt from the most recently
// sent segment it delivered, and RACK.xmit_ts / end_seq moved forward
// when that segment was sent after the one they describe.
func (c *Conn) rackCommit(ev *ackEvent) {
	x, r := &ev.rack, &c.rack
	if !x.ok {
		return
	}
	r.rtt = x.rtt
	if !r.valid || x.xmit.After(r.xmit) || (x.xmit.Equal(r.xmit) && x.txn > r.txn) {
		r.xmit, r.txn, r.endSeq, r.valid = x.xmit, x.txn, x.end, true
	}
}

// sentAfter reports whether s was sent after the transmission at xmit
// with order txn (RFC 8985 RACK_sent_after; the transmission counter
// breaks ties of the clock, where the RFC compares end_seq, so that a
// retransmission at the same instant still counts as later).
func sentAfter(s *txSeg, xmit time.Time, txn uint64) bool {
	return s.xmit.After(xmit) || (s.xmit.Equal(xmit) && s.txn > txn)
}

// rackReoWnd is the reordering window (§6.2 step 4).
func (c *Conn) rackReoWnd() time.Duration {
	r := &c.rack
	if !r.reordSeen {
		if c.rec.state != caOpen || c.sb.sackedSegs >= dupThresh {
			return 0
		}
	}
	mult := max(r.reoMult, 1)
	return min(time.Duration(mult)*c.rtt.minRTT/4, c.rtt.srtt)
}

// rackOnDSACK widens the reordering window once per round trip in which a
// D-SACK arrives (§6.2 step 4). It does not by itself mean reordering
// (RACK.reordering_seen is step 3's): a link that duplicates segments
// makes D-SACKs too. onDSACK sets reordering_seen when the D-SACK shows
// that an original arrived after its retransmission was sent.
func (c *Conn) rackOnDSACK() {
	r := &c.rack
	if r.dsackSeen && c.sndUna.LessThan(r.dsackRound) {
		return
	}
	r.dsackSeen, r.dsackRound = true, c.sndNxt
	r.reoMult = min(max(r.reoMult, 1)+1, maxReoMult) // RACK.reo_wnd_mult starts at 1
	r.reoPersist = reoPersistRounds
}

// maxReoMult bounds RACK.reo_wnd_mult; the window is capped at SRTT anyway
// (§6.2 step 4), so more steps than this change nothing for min_RTT ≥
// SRTT/64.
const maxReoMult = 256

// rackRecoveryEnded counts a recovery for the window's persistence.
func (c *Conn) rackRecoveryEnded() {
	r := &c.rack
	if r.reoPersist > 0 {
		r.reoPersist--
		if r.reoPersist == 0 {
			r.reoMult = 1
		}
	}
}

// rackDetectLoss marks lost the segments RACK finds lost (§6.2 step 5) and
// arms the reordering timer for the ones that may still be (§6.3). It
// reports whether it marked any.
func (c *Conn) rackDetectLoss(now time.Time) bool {
	r := &c.rack
	if !r.valid || c.sb.sackedSegs == 0 {
		// Without SACKed segments every delivered one was acknowledged
		// cumulatively, so nothing outstanding was sent before it.
		c.disarm(tReo)
		return false
	}
	reo := c.rackReoWnd()
	var wait time.Duration
	marked := false
	sb := &c.sb
	for i := range sb.segs {
		s := &sb.segs[i]
		if s.has(sfSacked) || (s.has(sfLost) && !s.has(sfRetrans)) {
			continue
		}
		if s.txn == r.txn || sentAfter(s, r.xmit, r.txn) {
			continue // sent after the latest delivered segment
		}
		remaining := s.xmit.Add(r.rtt + reo).Sub(now)
		if remaining <= 0 {
			sb.setFlags(i, sfLost, sfRetrans)
			marked = true
		} else {
			wait = max(wait, remaining)
		}
	}
	if wait > 0 {
		c.arm(tReo, wait)
	} else {
		c.disarm(tReo)
	}
	return marked
}

// onReoTimer: the reordering window of a segment passed (§6.3).
func (c *Conn) onReoTimer(now time.Time) {
	c.p.stats.RACKReoTimeouts.Inc()
	if c.rackDetectLoss(now) {
		c.startRecoveryIfNeeded(now)
		c.output()
	}
}

// ---- Tail loss probe (§7). ----

// armTLP schedules a probe after sending or on an ACK (§7.2), when the
// connection is in the open state, uses SACK and has data in flight.
func (c *Conn) armTLP(now time.Time) {
	if !c.sackOK || !c.p.tun.RACK.Load() || c.rec.state != caOpen || c.rack.tlpActive ||
		c.sndUna == c.sndNxt || !c.dataState() {
		c.disarm(tTLP)
		return
	}
	var pto time.Duration
	if c.rtt.seeded {
		pto = 2 * c.rtt.srtt
		if c.pipe() <= c.smss {
			pto += wcDelAck
		}
	} else {
		pto = time.Second
	}
	pto = max(pto, 10*time.Millisecond)
	if rto := c.timeOf(c.tim.when[tRexmt]); !rto.IsZero() && !now.Add(pto).Before(rto) {
		// §7.2: when the RTO would fire first, the probe takes its
		// place (PTO = the time left to the RTO), and the RTO moves one
		// RTO past the probe (onTLP arms it again as the probe leaves):
		// a lost tail costs a probe, not a timeout and a window of one.
		pto = max(rto.Sub(now), 0)
		c.arm(tRexmt, pto+c.rtt.current(c))
	}
	c.arm(tTLP, pto)
}

// onTLP sends the probe (§7.3): one segment of new data if the windows
// allow, else the last segment sent again.
func (c *Conn) onTLP(now time.Time) {
	if c.rec.state != caOpen || c.sndUna == c.sndNxt || c.rack.tlpActive || !c.dataState() {
		return
	}
	c.p.stats.TLPProbes.Inc()
	seq := c.sndNxt
	if c.sendNew(now, c.smss, true) {
		c.rack.tlpActive, c.rack.tlpRetrans = true, false
		c.rack.tlpSeq, c.rack.tlpLen = seq, int(seq.Size(c.sndNxt))
		c.rack.tlpEnd = c.sndNxt
	} else if n := len(c.sb.segs); n > 0 {
		i := n - 1
		if c.sb.segs[i].len() > c.segSize() {
			c.sb.split(i, c.sb.segs[i].end-seqnum.Value(c.segSize()))
			i++
		}
		s := c.sb.segs[i]
		c.retransmit(i, now, false)
		c.rack.tlpActive, c.rack.tlpRetrans = true, true
		c.rack.tlpSeq, c.rack.tlpLen = s.start, s.len()
		c.rack.tlpEnd = c.sndNxt
	}
	c.arm(tRexmt, c.rtt.current(c))
}

// tlpOnAck decides whether a probe repaired a loss (§7.4).
func (c *Conn) tlpOnAck(ev *ackEvent) {
	r := &c.rack
	if !r.tlpActive || c.sndUna.LessThan(r.tlpEnd) {
		return
	}
	switch {
	case !r.tlpRetrans:
		r.tlpActive = false // new data probed and acknowledged
	case ev.dsackTLP:
		r.tlpActive = false // the original and the probe both arrived
	case c.sndUna.GreaterThan(r.tlpEnd):
		// The probe repaired a loss: reduce the window as fast recovery
		// would have.
		r.tlpActive = false
		c.p.stats.TLPRecovered.Inc()
		c.ccs.InFlight = c.flightSize()
		c.cc.OnCongestion(&c.ccs, ev.now, cc.Loss)
		c.ccs.InFlight = c.pipe()
		c.cc.OnRecoveryEnd(&c.ccs, ev.now)
	case !ev.advanced && ev.sacked == 0 && !ev.data:
		r.tlpActive = false // a pure duplicate: no loss
	}
}
