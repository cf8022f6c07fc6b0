package tcp

import (
	"slices"
	"time"

	"ustack/internal/seqnum"
	"ustack/transport/tcp/cc"
	"ustack/wire"
)

// Loss recovery, on each acceptable ACK:
//
//	SACK blocks ─► scoreboard (sack.go) ─┐
//	cumulative ACK ─► scoreboard, send queue, RTT (rtt.go), rate (rate.go)
//	                                     ▼
//	undo check (RFC 3522 timestamps, RFC 3708 D-SACK)
//	loss detection: RACK (rack.go) or RFC 6675 IsLost; duplicate ACKs
//	without SACK (RFC 6582 NewReno)
//	recovery: enter (cc.Loss), PRR on every ACK (RFC 6937), exit at the
//	recovery point; after an RTO, the Loss state until the same
//	congestion control: cc.Controller.OnAck; TLP (RFC 8985 §7.4)
//	timers: RTO restart (RFC 6298 §5.3), TLP

// caState is the sender's congestion state.
type caState uint8

const (
	caOpen     caState = iota
	caRecovery         // fast recovery (RFC 6675 / RFC 6582) with PRR
	caLoss             // after an RTO, until snd.una passes the recovery point
)

func (s caState) String() string {
	switch s {
	case caRecovery:
		return "recovery"
	case caLoss:
		return "loss"
	}
	return "open"
}

type recoveryState struct {
	state caState
	point seqnum.Value // RecoveryPoint (RFC 6675) / "recover" (RFC 6582)
	// PRR (RFC 6937).
	prrDelivered, prrOut, recoverFS int
	// Without SACK: duplicate ACKs, and the bytes they stand for.
	dupAcks    int
	renoSacked int
	hadRecover bool
	// F-RTO (RFC 5682 §2): 1 waiting for the first ACK after the RTO, 2
	// new data sent, waiting for the second.
	frto uint8
}

// undoState remembers a congestion response that may prove spurious.
type undoState struct {
	active  bool
	loss    bool         // the episode began with an RTO
	marker  seqnum.Value // snd.una when it began
	retrans int          // bytes retransmitted and not yet reported duplicate (D-SACK)
	// What the episode retransmitted and no D-SACK has reported yet, in
	// merged ranges; nil with rxFull when there were too many to keep
	// (then D-SACK cannot undo this episode).
	rx       []seqRange
	rxFull   bool
	stamp    uint32       // TSval of the first retransmission (RFC 3522)
	stampEnd seqnum.Value // end of the first retransmitted segment
	hasStamp bool
}

// ackEvent collects what one ACK did.
type ackEvent struct {
	now                        time.Time
	priorInFlight              int
	acked                      int // sequence space cumulatively acknowledged
	sacked                     int // newly SACKed
	delivered                  int // newly delivered (acked and not SACKed before, or SACKed)
	advanced, data, dupAck     bool
	dsack, dsackTLP, dsackUndo bool
	headXmit                   time.Time // last send time of the first segment cumulatively acknowledged
	// RTT sources (RFC 6298 §3, Karn): the oldest segment newly
	// acknowledged cumulatively, unless that includes a retransmitted
	// one; else the oldest newly SACKed never retransmitted.
	ackOldest, sackOldest time.Time
	ackRetrans            bool
	rttFrom               time.Time
	cwndSet               bool // the window for this ACK is set (F-RTO)
	// RACK (rack.go): the ACK's timestamp echo, RACK.fack before the
	// ACK, and the most recently sent segment it delivered.
	ecr    uint32
	hasEcr bool
	fack   seqnum.Value
	fackOK bool
	rack   struct {
		xmit time.Time
		txn  uint64
		end  seqnum.Value
		rtt  time.Duration
		ok   bool
	}
}

// newlyDelivered accounts a segment the peer now has, cumulatively (cum)
// or by SACK, unless it was SACKed before.
func (ev *ackEvent) newlyDelivered(c *Conn, s *txSeg, cum bool) {
	if s.has(sfSacked) {
		return
	}
	ev.delivered += s.len()
	c.rackUpdate(ev, s)
	c.rateOnDelivered(s, ev.now)
	switch {
	case cum && s.has(sfEverRetrans):
		ev.ackRetrans = true
	case cum:
		if ev.ackOldest.IsZero() || s.xmit.Before(ev.ackOldest) {
			ev.ackOldest = s.xmit
		}
	case !s.has(sfEverRetrans):
		if ev.sackOldest.IsZero() || s.xmit.Before(ev.sackOldest) {
			ev.sackOldest = s.xmit
		}
	}
}

// ackReceived is the sender's side of an acceptable ACK (RFC 9293
// §3.10.7.4, fifth check), after its validity checks. wndChanged tells
// whether it updated the send window (a duplicate ACK may not).
func (c *Conn) ackReceived(seg *segment, now time.Time, wndChanged bool) {
	ev := ackEvent{now: now, priorInFlight: c.pipe(), data: seg.payloadLen > 0,
		fack: c.rack.fack, fackOK: c.rack.fackOK}
	if c.tsOK && seg.opts.HasTimestamps && seg.opts.TSEcr != 0 {
		ev.ecr, ev.hasEcr = seg.opts.TSEcr, true
	}
	if c.sackOK && seg.opts.NumSACK > 0 {
		c.processSACK(&seg.opts, seg.ack, &ev)
	}
	if seg.ack.GreaterThan(c.sndUna) {
		ev.acked = int(c.sndUna.Size(seg.ack))
		ev.advanced = true
		c.sb.ackTo(seg.ack, func(s *txSeg) {
			if ev.headXmit.IsZero() {
				ev.headXmit = s.xmit
			}
			ev.newlyDelivered(c, s, true)
		})
		c.sendq.ack(seg.ack)
		c.sndUna = seg.ack
		c.stats.bytesAcked += uint64(ev.acked)
		c.rtt.backoff = 0
		c.stallStart = c.stampOf(now)
		c.persistShift = 0
		c.softErr = nil // something got through
		c.writable.signal()
	}
	c.rackCommit(&ev)
	// RTT (RFC 6298 §3 Karn: only segments never retransmitted; RFC 7323
	// §4: any segment, by its echoed timestamp).
	switch {
	case !ev.ackRetrans && !ev.ackOldest.IsZero():
		ev.rttFrom = ev.ackOldest
	case !ev.sackOldest.IsZero():
		ev.rttFrom = ev.sackOldest
	}
	switch {
	case !ev.rttFrom.IsZero():
		c.rtt.sample(c, now.Sub(ev.rttFrom))
	case ev.advanced && c.tsOK && seg.opts.HasTimestamps && seg.opts.TSEcr != 0 &&
		int32(seg.opts.TSEcr-c.tsNow(ev.headXmit)) >= 0:
		// The echo must be of the latest transmission of the data it
		// acknowledges: an older one (the peer answering a duplicate
		// with a stale TS.Recent after our ACK was lost) would measure
		// our retransmission timeout, not the path.
		if d := int32(c.tsNow(now) - seg.opts.TSEcr); d >= 0 {
			c.rtt.sample(c, max(time.Duration(d)*time.Millisecond, time.Millisecond))
		}
	}
	if ev.advanced || ev.sacked > 0 || ev.dsack {
		c.checkUndo(&ev, seg)
	}

	// Duplicate ACK (RFC 5681 §2): data outstanding, no data or SYN or
	// FIN carried, the acknowledgment equal to snd.una (an older one,
	// reordered or duplicated by the network, is not one) and the window
	// unchanged. With SACK it plays no part in loss detection: RACK and
	// RFC 6675 IsLost work from what the scoreboard newly learned, so an
	// exact copy of an earlier ACK, or one bearing only a D-SACK, marks
	// nothing lost (RFC 6675 §2, §5).
	if seg.ack == c.sndUna && !ev.advanced && seg.payloadLen == 0 &&
		seg.flags&(wire.TCPFlagSYN|wire.TCPFlagFIN) == 0 && c.sndUna != c.sndNxt && !wndChanged {
		ev.dupAck = true
	}
	c.detectLoss(&ev)
	c.startRecoveryIfNeeded(now)

	switch c.rec.state {
	case caRecovery:
		if !c.sndUna.LessThan(c.rec.point) {
			c.exitRecovery(now)
		} else {
			if !c.sackOK && ev.advanced && c.sndUna != c.sndNxt && len(c.sb.segs) > 0 {
				// NewReno partial ACK: the next hole is lost too (RFC
				// 6582 §3.2 step 3).
				if !c.sb.segs[0].has(sfRetrans) {
					c.sb.setFlags(0, sfLost, 0)
				}
			}
			c.prrUpdate(ev.delivered)
		}
	case caLoss:
		if c.rec.frto != 0 {
			c.frtoAck(&ev)
		}
		if c.rec.state == caLoss && !c.sndUna.LessThan(c.rec.point) {
			c.rec.state = caOpen
			c.rec.dupAcks, c.rec.renoSacked = 0, 0
			c.rec.frto = 0
		}
	}

	c.tlpOnAck(&ev)
	rs := c.rateSample(ev.priorInFlight)
	// The window grows on ACKs that move snd.una (RFC 5681 §3.1), by what
	// they delivered, SACKed segments included (as Linux); SACK-only ACKs
	// leave it (they allow limited transmit through pipe instead).
	if ev.delivered > 0 && (ev.advanced || c.rec.state == caRecovery) && !ev.cwndSet {
		c.ccs.InFlight = c.pipe()
		// The Ack lives in the connection: a pointer passed through the
		// Controller interface escapes, and one on the stack would be a
		// heap allocation per ACK.
		c.ccAck = cc.Ack{Now: now, Acked: ev.delivered, RTT: c.rtt.latestIf(!ev.rttFrom.IsZero()),
			InRecovery: c.rec.state == caRecovery,
			AppLimited: !c.cwndLimited && ev.priorInFlight < c.ccs.CWnd/2, Rate: rs}
		c.cc.OnAck(&c.ccs, &c.ccAck)
	}

	// Timers (RFC 6298 §5.2, §5.3).
	if c.sndUna == c.sndNxt {
		if !c.tim.persist {
			c.disarm(tRexmt)
		}
		c.disarm(tTLP)
		c.disarm(tReo)
		c.rack.tlpActive = false
	} else if ev.advanced {
		c.arm(tRexmt, c.rtt.current(c))
		c.tim.persist = false
		if c.rec.state == caOpen {
			c.armTLP(now)
		}
	}
}

// detectLoss marks lost segments: RACK (RFC 8985) or RFC 6675 IsLost with
// SACK; duplicate ACKs without (RFC 5681 §3.2, RFC 6582).
func (c *Conn) detectLoss(ev *ackEvent) {
	if c.sackOK {
		if c.p.tun.RACK.Load() {
			c.rackDetectLoss(ev.now)
		} else {
			c.isLostRFC6675()
		}
		return
	}
	r := &c.rec
	if ev.advanced {
		// What the duplicate ACKs stood for is now acknowledged: it was
		// counted as delivered then.
		d := min(r.renoSacked, ev.acked)
		r.renoSacked -= d
		ev.delivered -= d
		r.dupAcks = 0
	}
	if !ev.dupAck {
		return
	}
	r.dupAcks++
	// Each duplicate ACK means a segment left the network (RFC 5681
	// §3.2 step 4): count it as delivered, for PRR.
	outstanding := int(c.sndUna.Size(c.sndNxt))
	if r.renoSacked+c.smss < outstanding {
		r.renoSacked += c.smss
		ev.delivered += c.smss
	}
	// RFC 6582 §3.2 step 2: a new recovery only if the ACK covers more
	// than the last recovery point.
	if r.state == caOpen && r.dupAcks >= dupThresh && len(c.sb.segs) > 0 &&
		(!r.hadRecover || c.sndUna.GreaterThan(r.point)) {
		c.sb.setFlags(0, sfLost, 0)
	}
}

// startRecoveryIfNeeded enters fast recovery when segments are deemed
// lost in the open state.
func (c *Conn) startRecoveryIfNeeded(now time.Time) {
	if c.rec.state != caOpen || c.sb.lostPending == 0 {
		return
	}
	r := &c.rec
	r.state = caRecovery
	r.point = c.sndNxt
	r.hadRecover = true
	r.prrDelivered, r.prrOut = 0, 0
	r.recoverFS = max(int(c.sndUna.Size(c.sndNxt)), 1)
	c.undoBegin(false)
	c.ccs.InFlight = c.flightSize()
	c.cc.OnCongestion(&c.ccs, now, cc.Loss)
	c.p.stats.FastRetrans.Inc()
	if c.sackOK {
		c.p.stats.SACKRecovery.Inc()
	} else {
		c.p.stats.RenoRecovery.Inc()
	}
	c.disarm(tTLP)
	c.prrUpdate(0)
}

// prrUpdate sets the window for this ACK in recovery (RFC 6937 §3:
// proportional rate reduction, with slow-start reduction bound when pipe
// falls below ssthresh).
func (c *Conn) prrUpdate(delivered int) {
	r := &c.rec
	r.prrDelivered += delivered
	pipe := c.pipe()
	ssth := c.ccs.SSThresh
	var sndcnt int
	if pipe > ssth {
		sndcnt = int((int64(r.prrDelivered)*int64(ssth)+int64(r.recoverFS)-1)/int64(r.recoverFS)) - r.prrOut
	} else {
		limit := max(r.prrDelivered-r.prrOut, delivered) + c.smss // PRR-SSRB
		sndcnt = min(ssth-pipe, limit)
	}
	sndcnt = max(sndcnt, 0)
	if r.prrOut == 0 && sndcnt == 0 && c.sb.lostPending > 0 {
		sndcnt = c.smss // the fast retransmission goes at once
	}
	c.ccs.CWnd = max(pipe+sndcnt, c.smss)
}

// exitRecovery ends fast recovery at the recovery point.
func (c *Conn) exitRecovery(now time.Time) {
	c.rec.state = caOpen
	c.rec.dupAcks, c.rec.renoSacked = 0, 0
	c.ccs.InFlight = c.pipe()
	c.cc.OnRecoveryEnd(&c.ccs, now)
	c.rackRecoveryEnded()
}

// enterLoss is the congestion response to an RTO (RFC 5681 §3.1, RFC
// 6298 §5.5, RFC 6675 §5.1): the window drops to one segment, every
// segment not SACKed is deemed lost and resent in order.
func (c *Conn) enterLoss(now time.Time) {
	c.p.stats.Timeouts.Inc()
	wasOpen := c.rec.state == caOpen
	switch {
	case c.rec.state == caOpen:
		c.undoBegin(true)
		c.ccs.InFlight = c.flightSize()
		c.cc.OnCongestion(&c.ccs, now, cc.Timeout)
	case c.rec.state == caRecovery:
		// The threshold was set when recovery began; keep it.
		c.undo.loss = true
	}
	c.ccs.CWnd = c.smss
	c.rec.state = caLoss
	c.rec.point = c.sndNxt
	c.rec.dupAcks, c.rec.renoSacked = 0, 0
	c.rec.hadRecover = true
	c.rec.frto = 0
	if wasOpen && c.p.tun.FRTO.Load() && !c.tsOK && !c.sackOK && len(c.sb.segs) > 0 {
		// F-RTO (RFC 5682 §2, step 1): resend only the first segment
		// and let the next two ACKs tell whether the timeout was
		// spurious. With timestamps, Eifel detection does that job.
		c.rec.frto = 1
		c.sb.setFlags(0, sfLost, sfRetrans)
		c.rack.tlpActive = false
		c.disarm(tTLP)
		c.disarm(tReo)
		return
	}
	if len(c.sb.segs) > 0 && c.sb.segs[0].has(sfSacked) {
		// The segment at snd.una was SACKed yet not acknowledged: the
		// peer dropped what it SACKed (RFC 2018 §8). Forget every SACK
		// mark and resend from the left edge.
		c.p.stats.SACKReneging.Inc()
		c.sb.clearSacked()
	}
	c.sb.markAllLost()
	c.rack.tlpActive = false
	c.disarm(tTLP)
	c.disarm(tReo)
}

// frtoAck runs steps 2 and 3 of F-RTO (RFC 5682 §2) on an ACK in the
// Loss state.
func (c *Conn) frtoAck(ev *ackEvent) {
	r := &c.rec
	if !ev.advanced && !ev.dupAck {
		// Neither a duplicate ACK nor new data acknowledged (an old ACK,
		// a window update, data from the peer): it tells nothing of the
		// timeout (RFC 5682 §2 steps 2 and 3 name only these two kinds).
		return
	}
	switch {
	case !ev.advanced || !c.sndUna.LessThan(r.point) && r.frto == 1:
		// A duplicate ACK (step 2a, 3a), or everything acknowledged:
		// the conventional response, from at most three segments (step
		// 3a).
		if r.frto == 2 {
			c.ccs.CWnd = min(c.ccs.CWnd, 3*c.smss)
		}
		r.frto = 0
		c.sb.markAllLost()
	case r.frto == 1:
		// Step 2b: new data acknowledged. Send up to two new segments
		// rather than retransmit; the next ACK decides.
		if c.unsent() == 0 {
			r.frto = 0
			c.sb.markAllLost()
			return
		}
		r.frto = 2
		ev.cwndSet = true // no growth on this ACK
		for range 2 {
			if !c.sendNew(ev.now, c.smss, false) {
				break
			}
		}
	default:
		// Step 3b: the second ACK acknowledges new data too: the
		// segments the RTO would have resent were not lost.
		r.frto = 0
		c.doUndo(ev.now)
	}
}

// undoBegin starts an episode whose congestion response may be undone.
func (c *Conn) undoBegin(loss bool) {
	c.undo = undoState{active: true, loss: loss, marker: c.sndUna, rx: c.undo.rx[:0]}
}

// maxUndoRanges bounds the retransmitted ranges an episode remembers.
// Retransmissions go in sequence order, so a range per hole: more than
// this many holes in one episode is no spurious response anyway.
const maxUndoRanges = 64

// noteRetrans records that [start, end) was retransmitted in the episode.
func (u *undoState) noteRetrans(start, end seqnum.Value) {
	if !start.LessThan(end) {
		return
	}
	u.retrans += int(start.Size(end))
	if u.rxFull {
		return
	}
	for i := len(u.rx) - 1; i >= 0 && i >= len(u.rx)-4; i-- {
		r := &u.rx[i]
		if !end.LessThan(r.start) && !r.end.LessThan(start) {
			r.start, r.end = seqnum.Min(r.start, start), seqnum.Max(r.end, end)
			return
		}
	}
	if len(u.rx) == maxUndoRanges {
		u.rx, u.rxFull = u.rx[:0], true
		return
	}
	u.rx = append(u.rx, seqRange{start, end})
}

// takeDup removes the part of d the episode retransmitted and returns its
// length in bytes: the duplicates that D-SACK reports count toward undo
// only for data we retransmitted (RFC 3708 §2: the duplicate must be of
// a retransmission), and each byte once, so that a copy of an ACK (the
// network duplicates ACKs too) does not count its D-SACK twice.
func (u *undoState) takeDup(d seqRange) int {
	n := 0
	for i := 0; i < len(u.rx); i++ {
		r := u.rx[i]
		lo, hi := seqnum.Max(r.start, d.start), seqnum.Min(r.end, d.end)
		if !lo.LessThan(hi) {
			continue
		}
		n += int(lo.Size(hi))
		switch {
		case lo == r.start && hi == r.end:
			u.rx = slices.Delete(u.rx, i, i+1)
			i--
		case lo == r.start:
			u.rx[i].start = hi
		case hi == r.end:
			u.rx[i].end = lo
		default: // d lies inside r: split it
			u.rx[i].end = lo
			u.rx = slices.Insert(u.rx, i+1, seqRange{hi, r.end})
			i++
		}
	}
	return n
}

// checkUndo undoes the congestion response when it proves spurious: every
// retransmission was reported duplicate by D-SACK (RFC 3708), or the ACK
// of the first retransmitted segment echoes a timestamp older than that
// retransmission, so the original arrived (Eifel detection, RFC 3522).
func (c *Conn) checkUndo(ev *ackEvent, seg *segment) {
	u := &c.undo
	if !u.active {
		return
	}
	switch {
	case ev.dsackUndo && u.retrans == 0:
		c.doUndo(ev.now)
	case c.rec.state != caOpen && u.hasStamp && ev.advanced && !c.sndUna.LessThan(u.stampEnd) &&
		c.tsOK && seg.opts.HasTimestamps && seg.opts.TSEcr != 0 && int32(seg.opts.TSEcr-u.stamp) < 0:
		c.doUndo(ev.now)
	case c.rec.state == caOpen && !u.hasStamp && c.sndUna.GreaterThan(u.marker.Add(seqnum.Size(4*c.rcvBuf))):
		u.active = false // long past: nothing to undo any more
	}
}

// doUndo restores the congestion state from before the episode.
func (c *Conn) doUndo(now time.Time) {
	u := &c.undo
	c.ccs.InFlight = c.pipe()
	c.cc.Undo(&c.ccs, now)
	c.p.stats.Undos.Inc()
	if u.loss {
		c.p.stats.SpuriousRTOs.Inc()
	}
	c.sb.clearLost()
	if c.rec.state != caOpen {
		c.rec.state = caOpen
		c.rec.dupAcks, c.rec.renoSacked = 0, 0
		c.rackRecoveryEnded()
	}
	c.rtt.backoff = 0
	c.rack.reordSeen = true
	u.active = false
	c.stats.undos++
}

// simpleRetransmit resends, without a congestion response, the segments
// too large for a lowered MSS (RFC 1191 §6.5: they were dropped on the
// way).
func (c *Conn) simpleRetransmit() {
	seg := c.segSize()
	for i := range c.sb.segs {
		s := &c.sb.segs[i]
		if !s.has(sfSacked) && s.len() > seg {
			c.sb.setFlags(i, sfLost, sfRetrans)
		}
	}
}

// latestIf is the last RTT sample when ok, else 0.
func (r *rttState) latestIf(ok bool) time.Duration {
	if ok {
		return r.latest
	}
	return 0
}
