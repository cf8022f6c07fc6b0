package tcp

import (
	"syscall"
	"time"

	"ustack/internal/seqnum"
	"ustack/wire"
)

// Input: RFC 9293 §3.10.7.4 "SEGMENT ARRIVES", state by state.
//
//	deliver (in a received batch: the ACK decision at the batch's end)
//	  └─► input
//	        CLOSED     ─► RST for it (§3.10.7.1)
//	        SYN-SENT   ─► inputSynSent (§3.10.7.3)
//	        otherwise  ─► inputSync: PAWS (RFC 7323 §5), acceptability,
//	                      RST (RFC 5961 §3), SYN (RFC 5961 §4), ACK
//	                      (RFC 5961 §5, then ackReceived in recovery.go),
//	                      text (recvq.go), FIN
//	  └─► finishInput: output (data, retransmissions), then the ACK
//	                   decision (at once, or delayed) — once per batch
//	                   (flushBatch) for segments of a received batch

// deliver processes one segment for this connection (RFC 9293 §3.10.7.4).
// It takes ownership of seg.pkt. It runs on a link's reader goroutine.
//
// A segment that arrived in a received batch (seg.batch) is processed at
// once, but what it calls for — data to send and the ACK decision — waits
// for the batch's end (flushBatch): a batch of 64 segments is answered
// with one ACK and one burst, as Linux answers one GRO packet, instead of
// 32 ACKs each sent through the layers while more data is waiting.
func (c *Conn) deliver(seg *segment) {
	c.mu.Lock()
	// Read under the mutex: times (and the timestamps made from them)
	// never go backwards from one holder of the mutex to the next.
	c.nowCache = c.stampOf(c.p.clk.Now())
	batch := seg.batch
	c.input(seg)
	// An ACK due at once for something out of the ordinary (a challenge
	// ACK; an out-of-window, out-of-order or hole-filling segment's) is
	// not about coalescing: it leaves now, in arrival order with the
	// batch's other answers, as Linux answers each such segment. ACKs
	// for in-order data (every second segment, quick-ACK mode: ackData)
	// wait for the batch's end.
	if batch.More() && c.st.synchronized() && !c.ackNow {
		if !c.inBatch {
			c.inBatch = batch.Defer((*batchFlush)(c))
		}
	} else {
		// Alone, or the batch's last frame: nothing to wait for. Work
		// deferred by earlier frames is done now too.
		c.inBatch = false
		c.finishInput()
	}
	c.nowCache = 0
	c.unlock()
}

// batchFlush is a Conn seen as the work it deferred to a batch's end.
type batchFlush Conn

// FlushBatch implements proto.BatchFlusher.
func (f *batchFlush) FlushBatch() {
	c := (*Conn)(f)
	c.mu.Lock()
	if !c.inBatch {
		// Done already, with the batch's last frame.
		c.mu.Unlock()
		return
	}
	c.inBatch = false
	c.nowCache = c.stampOf(c.p.clk.Now())
	c.finishInput()
	c.nowCache = 0
	c.unlock()
}

// input runs one segment through the state machine. It releases the
// payload unless it queued it.
func (c *Conn) input(seg *segment) {
	defer seg.release()
	now := c.now()
	c.stats.segsIn++
	c.lastRecv = c.stampOf(now)
	c.keepProbes = 0
	switch c.st {
	case StateClosed:
		c.inputClosed(seg)
	case StateListen:
	case StateSynSent:
		c.inputSynSent(seg, now)
	default:
		c.inputSync(seg, now)
	}
}

// finishInput sends what the segments allowed and the ACK they call for.
func (c *Conn) finishInput() {
	if c.dataState() {
		c.output()
	}
	c.ackDecision()
}

// ackDecision sends an ACK now when one is due (RFC 5681 §4.2: every
// second full-sized segment, out-of-order data, a hole filled; quick-ACK
// mode) and otherwise arms the delayed-ACK timer (RFC 9293 §3.8.6.3).
func (c *Conn) ackDecision() {
	if !c.st.synchronized() {
		return
	}
	if c.ackNow || c.ackData {
		if c.quickAcks > 0 || len(c.recvq.ooo) > 0 {
			c.p.stats.QuickACKs.Inc()
		}
		c.sendAck()
		return
	}
	if c.ackPending > 0 && c.tim.when[tDelack].IsZero() {
		c.arm(tDelack, min(dur(&c.p.tun.DelAck), MaxDelAck))
	}
}

// inputClosed answers a segment for a closed connection (§3.10.7.1).
func (c *Conn) inputClosed(seg *segment) {
	if seg.flags&wire.TCPFlagRST != 0 {
		return
	}
	if seg.flags&wire.TCPFlagACK != 0 {
		c.sendRST(seg.ack)
		return
	}
	c.sendRSTAck(0, seg.seq.Add(seg.seqLen()))
}

// inputSynSent is §3.10.7.3: waiting for the SYN-ACK (or a SYN, for a
// simultaneous open).
func (c *Conn) inputSynSent(seg *segment, now time.Time) {
	f := seg.flags
	ack := f&wire.TCPFlagACK != 0
	if ack && (seg.ack.LessThanEq(c.iss) || seg.ack.GreaterThan(c.sndNxt)) {
		if f&wire.TCPFlagRST == 0 {
			c.sendRST(seg.ack)
		}
		return
	}
	if f&wire.TCPFlagRST != 0 {
		if ack { // RFC 5961 §3.2: only an RST acknowledging our SYN
			c.p.stats.AttemptFails.Inc()
			c.toClosed(syscall.ECONNREFUSED)
		}
		return
	}
	if f&wire.TCPFlagSYN == 0 {
		return
	}
	c.irs = seg.seq
	c.rcvNxt = seg.seq + 1
	c.lastAckSent = c.rcvNxt
	c.synOptions(&seg.opts, now)
	if ack {
		c.sndUna = seg.ack
		c.sndWnd = int(seg.wnd) // a SYN's window is never scaled (RFC 7323 §2.2)
		c.maxSndWnd = c.sndWnd
		c.sndWl1, c.sndWl2 = seg.seq, seg.ack
		c.disarm(tRexmt)
		if c.synRetries == 0 {
			c.rtt.sample(c, now.Sub(c.timeOf(c.synSentAt)))
		} else {
			c.rtt.backoff = 0
		}
		c.rcvAdv = c.rcvNxt.Add(seqnum.Size(min(c.rcvBuf, 65535)))
		c.establish(now)
		if c.synRetries > 0 {
			c.ccs.CWnd = c.smss // RFC 5681 §3.1: the SYN was lost
		}
		c.ackNow = true
		if seg.payloadLen > 0 || f&wire.TCPFlagFIN != 0 {
			c.processText(seg, now)
		}
		return
	}
	// Simultaneous open (§3.5, figure 8): SYN-RECEIVED, send SYN-ACK.
	c.st = StateSynReceived
	c.sndWnd = int(seg.wnd)
	c.maxSndWnd = c.sndWnd
	c.sndWl1 = seg.seq
	c.sendSYN()
	c.arm(tRexmt, c.rtt.current(c))
}

// synOptions takes what a SYN or SYN-ACK agreed: window scaling (RFC 7323
// §2.2: both must send it), timestamps (§3.2), SACK-permitted (RFC 2018),
// the MSS (RFC 9293 §3.7.1: 536 without one).
func (c *Conn) synOptions(o *wire.TCPOptions, now time.Time) {
	if c.offer.ws && o.HasWScale {
		c.wsOK = true
		c.sndWS = min(o.WScale, wire.TCPMaxWScale)
	} else {
		c.wsOK, c.sndWS, c.rcvWS = false, 0, 0
	}
	if c.offer.ts && o.HasTimestamps {
		c.tsOK = true
		c.tsRecent, c.tsRecentAt = o.TSVal, c.stampOf(now)
	}
	c.sackOK = c.offer.sack && o.SACKPermitted
	c.peerMSS = 536
	if o.HasMSS {
		c.peerMSS = int(o.MSS)
	}
	c.setMSS()
	c.rcvMSS = min(c.advMSS, c.smss)
	c.cc.Init(&c.ccs, now)
}

// pawsOld is how long TS.Recent stays valid without updates (RFC 7323
// §5.5: 24 days).
const pawsOld = 24 * 24 * time.Hour

// inputSync is §3.10.7.4 for the synchronized states.
func (c *Conn) inputSync(seg *segment, now time.Time) {
	f := seg.flags
	rst := f&wire.TCPFlagRST != 0

	if c.st == StateTimeWait {
		c.inputTimeWait(seg, now)
		return
	}
	if c.st == StateSynReceived && f&wire.TCPFlagSYN != 0 {
		switch {
		case f&wire.TCPFlagACK == 0 && seg.seq == c.irs:
			// The peer's SYN again: our SYN-ACK was lost.
			c.sendSYN()
			return
		case f&wire.TCPFlagACK != 0 && seg.seq+1 == c.rcvNxt && seg.ack == c.sndNxt:
			// Simultaneous open (RFC 9293 §3.5, figure 8): the peer's
			// SYN-ACK acknowledges our SYN; its SYN we have.
			seg.seq++
			seg.flags &^= wire.TCPFlagSYN
			f = seg.flags
		}
	}

	// PAWS (RFC 7323 §5.3 R1): a segment whose timestamp is older than
	// TS.Recent is an old duplicate, unless TS.Recent is itself stale.
	if c.tsOK && seg.opts.HasTimestamps && !rst && int32(seg.opts.TSVal-c.tsRecent) < 0 {
		switch {
		case now.Sub(c.timeOf(c.tsRecentAt)) > pawsOld:
			c.tsRecent = seg.opts.TSVal // R1 exception: TS.Recent invalidated
		case c.disorderedAck(seg):
			// Taken for its SACK blocks; it leaves TS.Recent alone.
			c.p.stats.DisorderedACKs.Inc()
		default:
			c.p.stats.PAWSDrops.Inc()
			if seg.payloadLen == 0 && f&(wire.TCPFlagSYN|wire.TCPFlagFIN) == 0 {
				// An old ACK, overtaken by a later segment: no reply.
				// One would reach the peer as a duplicate ACK, a loss
				// signal to a sender without SACK (RFC 5681 §3.2), for
				// nothing but the network's reordering.
				return
			}
			// Report the part already received as a duplicate (RFC
			// 2883); data past rcv.nxt was not received at all.
			if end := seg.seq.Add(seqnum.Size(seg.payloadLen)); seg.payloadLen > 0 && seg.seq.LessThan(c.rcvNxt) {
				c.noteDSACK(seqRange{seg.seq, seqnum.Min(end, c.rcvNxt)})
			}
			c.outOfWindowAck(seg, now)
			return
		}
	}

	// Acceptability (§3.10.7.4 first check).
	if !c.acceptable(seg) {
		c.p.stats.OutOfWindow.Inc()
		if rst {
			return
		}
		if seg.payloadLen > 0 && seg.seq.Add(seqnum.Size(seg.payloadLen)).LessThanEq(c.rcvNxt) {
			c.p.stats.DupSegs.Inc()
			c.noteDSACK(seqRange{seg.seq, seg.seq.Add(seqnum.Size(seg.payloadLen))})
			c.quickAcks = max(c.quickAcks, 1)
		}
		c.outOfWindowAck(seg, now)
		return
	}

	// RST (RFC 5961 §3.2): only an exact match resets; in-window ones
	// get a challenge ACK.
	if rst {
		if seg.seq != c.rcvNxt {
			c.challengeAck(now)
			return
		}
		switch c.st {
		case StateSynReceived:
			c.p.stats.AttemptFails.Inc()
			c.toClosed(syscall.ECONNREFUSED)
		case StateEstablished, StateCloseWait:
			c.p.stats.EstabResets.Inc()
			c.toClosed(syscall.ECONNRESET)
		case StateFinWait1, StateFinWait2:
			c.toClosed(syscall.ECONNRESET)
		default: // CLOSING, LAST-ACK
			c.toClosed(nil)
		}
		return
	}

	// RFC 7323 §4.3 (2): remember the timestamp to echo.
	if c.tsOK && seg.opts.HasTimestamps && int32(seg.opts.TSVal-c.tsRecent) >= 0 &&
		seg.seq.LessThanEq(c.lastAckSent) {
		c.tsRecent, c.tsRecentAt = seg.opts.TSVal, c.stampOf(now)
	}

	// SYN in a synchronized state (RFC 5961 §4): challenge ACK.
	if f&wire.TCPFlagSYN != 0 {
		c.challengeAck(now)
		return
	}

	if f&wire.TCPFlagACK == 0 {
		return
	}
	if c.st == StateSynReceived {
		if !(c.sndUna.LessThan(seg.ack) && seg.ack.LessThanEq(c.sndNxt)) {
			c.sendRST(seg.ack)
			return
		}
		c.disarm(tRexmt)
		if c.synRetries == 0 {
			c.rtt.sample(c, now.Sub(c.timeOf(c.synSentAt)))
		}
		c.sndUna = seg.ack
		c.sndWnd = int(seg.wnd) << c.sndWS
		c.maxSndWnd = max(c.maxSndWnd, c.sndWnd)
		c.sndWl1, c.sndWl2 = seg.seq, seg.ack
		c.establish(now)
		if c.synRetries > 0 {
			c.ccs.CWnd = c.smss
		}
	}

	// ACK validity (RFC 5961 §5.2): (SND.UNA - MAX.SND.WND) <= SEG.ACK <= SND.NXT.
	if seg.ack.GreaterThan(c.sndNxt) {
		c.p.stats.BadACKs.Inc()
		c.challengeAck(now)
		return
	}
	if seg.ack.LessThan(c.sndUna.Sub(seqnum.Size(max(c.maxSndWnd, 1)))) {
		c.p.stats.BadACKs.Inc()
		c.challengeAck(now)
		return
	}
	c.lastAckRecv = c.stampOf(now)
	c.processAck(seg, now)
	if c.st == StateClosed || c.st == StateTimeWait && seg.payloadLen == 0 && f&wire.TCPFlagFIN == 0 {
		return
	}
	c.processText(seg, now)
}

// disorderedAck reports whether a segment that fails PAWS is a pure
// duplicate ACK that a later segment overtook on the way: no data, SYN or
// FIN, at rcv.nxt, acknowledging snd.una, with the window we have, and a
// timestamp older than TS.Recent by no more than an RTO. Processing it
// changes neither snd.una, the window nor TS.Recent; dropping it would
// lose its SACK blocks, a D-SACK among them. An old duplicate from an
// earlier incarnation cannot match all of this (as Linux's
// tcp_disordered_ack reasons; RFC 7323 §5.3 R1 would drop it).
func (c *Conn) disorderedAck(seg *segment) bool {
	if seg.payloadLen != 0 || seg.flags != wire.TCPFlagACK || seg.seq != c.rcvNxt || seg.ack != c.sndUna ||
		int(seg.wnd)<<c.sndWS != c.sndWnd {
		return false
	}
	old := time.Duration(int32(c.tsRecent-seg.opts.TSVal)) * time.Millisecond // our TS clock's tick (tsNow)
	return old <= c.rtt.current(c)
}

// acceptable is the acceptability test (§3.10.7.4, the table of four
// cases) against the window we advertised.
func (c *Conn) acceptable(seg *segment) bool {
	wnd := 0
	if c.rcvAdv.GreaterThan(c.rcvNxt) {
		wnd = int(c.rcvNxt.Size(c.rcvAdv))
	}
	n := seg.seqLen()
	switch {
	case n == 0 && wnd == 0:
		return seg.seq == c.rcvNxt
	case n == 0:
		return seg.seq.InWindow(c.rcvNxt, seqnum.Size(wnd))
	case wnd == 0:
		return false
	}
	last := seg.seq.Add(n - 1)
	return seg.seq.InWindow(c.rcvNxt, seqnum.Size(wnd)) || last.InWindow(c.rcvNxt, seqnum.Size(wnd))
}

// processAck is the fifth check for ESTABLISHED and the states after it:
// the send side, the window update and the transitions a FIN's ACK makes.
func (c *Conn) processAck(seg *segment, now time.Time) {
	// Window update (§3.10.7.4: SND.WL1, SND.WL2 rule).
	wndChanged := false
	if c.sndWl1.LessThan(seg.seq) || (c.sndWl1 == seg.seq && c.sndWl2.LessThanEq(seg.ack)) {
		w := int(seg.wnd) << c.sndWS
		wndChanged = w != c.sndWnd
		c.sndWnd = w
		c.sndWl1, c.sndWl2 = seg.seq, seg.ack
		c.maxSndWnd = max(c.maxSndWnd, w)
		if w > 0 && c.tim.persist {
			c.disarm(tRexmt)
			c.persistShift = 0
		}
	}
	c.probes = 0 // the peer answers (Linux resets icsk_probes_out on any ACK)
	switch {
	case !c.dataState() && c.st != StateFinWait2:
	case c.flight == nil && !seg.ack.GreaterThan(c.sndUna) && c.sndUna == c.sndNxt &&
		!(c.sackOK && seg.opts.NumSACK > 0):
		// Nothing ever sent, nothing acknowledged: what ackReceived
		// does on the zero flight state.
		if !c.tim.persist {
			c.disarm(tRexmt)
		}
		c.disarm(tTLP)
		c.disarm(tReo)
	default:
		c.ensureFlight()
		c.ackReceived(seg, now, wndChanged)
	}
	if !c.finQueued || !c.sndUna.GreaterThan(c.finSeq) {
		return
	}
	// Our FIN is acknowledged.
	switch c.st {
	case StateFinWait1:
		c.st = StateFinWait2
		c.disarm(tRexmt)
		c.armFinWait2()
	case StateClosing:
		c.enterTimeWait()
	case StateLastAck:
		c.toClosed(nil)
	}
}

// processText is the seventh and eighth checks: queue the data (in order
// or held beyond a hole) and take the FIN.
func (c *Conn) processText(seg *segment, now time.Time) {
	switch c.st {
	case StateEstablished, StateFinWait1, StateFinWait2:
	default:
		return // the peer's FIN came already: nothing more is data
	}
	seq, n, pkt := seg.seq, seg.payloadLen, seg.pkt
	fin := seg.flags&wire.TCPFlagFIN != 0
	if seg.flags&wire.TCPFlagSYN != 0 {
		seq++ // data in a SYN-ACK starts after the SYN
	}
	if n == 0 {
		pkt = nil
	}
	// Data after Close: nobody will read it (Linux TCPAbortOnData).
	if c.closed && n > 0 && seq.Add(seqnum.Size(n)).GreaterThan(c.rcvNxt) {
		c.p.stats.AbortOnData.Inc()
		c.resetAndClose()
		return
	}
	if n > 0 {
		c.stats.dataSegsIn++
		c.lastDataRecv = c.stampOf(now)
	}
	// Trim what came before (a partial duplicate: RFC 2883 D-SACK).
	if seq.LessThan(c.rcvNxt) {
		dup := int(seq.Size(c.rcvNxt))
		if dup >= n {
			if n > 0 {
				c.noteDSACK(seqRange{seq, seq.Add(seqnum.Size(n))})
			}
			if fin && seq.Add(seqnum.Size(n)) == c.rcvNxt && !c.rcvFin {
				c.finReceived(now)
			} else if n > 0 || fin {
				c.ackNow = true
			}
			return
		}
		c.p.stats.PartialDupSegs.Inc()
		c.noteDSACK(seqRange{seq, c.rcvNxt})
		pkt.TrimFront(dup)
		n -= dup
		seq = c.rcvNxt
	}
	// Trim what lies beyond the window.
	if end := seq.Add(seqnum.Size(n)); end.GreaterThan(c.rcvAdv) {
		cut := int(c.rcvAdv.Size(end))
		if cut >= n {
			n = 0
		} else {
			pkt.Truncate(n - cut)
			n -= cut
		}
		fin = false
		c.ackNow = true
	}
	if seq != c.rcvNxt {
		// Out of order: hold it and say so at once with SACK (RFC 5681
		// §4.2, RFC 2018).
		if n > 0 {
			if d, ok := c.recvq.insert(seq, pkt); ok {
				c.noteDSACK(d)
			}
			seg.pkt = nil
			c.p.stats.OOOSegs.Inc()
		}
		if fin {
			c.oooFin, c.oooFinSeq = true, seq.Add(seqnum.Size(n))
		}
		c.ackNow = true
		return
	}
	if n > 0 {
		c.measureRcvMSS(n)
		c.recvq.push(pkt)
		seg.pkt = nil
		prev := c.rcvNxt
		c.rcvNxt = c.rcvNxt.Add(seqnum.Size(n))
		c.ackPending += n
		if len(c.recvq.ooo) > 0 {
			c.rcvNxt = c.recvq.pull(c.rcvNxt)
			c.ackNow = true // a hole filled (RFC 5681 §4.2)
		}
		c.stats.bytesReceived += uint64(prev.Size(c.rcvNxt))
		if len(c.recvq.ooo) > 0 {
			c.ackNow = true // more holes to report (RFC 2018)
		} else if c.quickAcks > 0 || c.ackPending >= 2*c.rcvMSS {
			c.ackData = true
		}
		c.rcvRTTMeasure(seg, now)
		c.readable.signal()
	}
	if c.oooFin && c.rcvNxt == c.oooFinSeq {
		fin = true
	}
	if fin && !c.rcvFin {
		c.finReceived(now)
	}
}

// measureRcvMSS tracks the peer's segment size, for the every-second-
// segment ACK rule.
func (c *Conn) measureRcvMSS(n int) {
	if n > c.rcvMSS {
		c.rcvMSS = min(n, c.advMSS)
	}
}

// finReceived takes the peer's FIN (§3.10.7.4 eighth check).
func (c *Conn) finReceived(now time.Time) {
	c.rcvNxt++
	c.rcvFin = true
	c.oooFin = false
	c.ackNow = true
	c.readable.signal()
	switch c.st {
	case StateEstablished, StateSynReceived:
		c.st = StateCloseWait
	case StateFinWait1:
		if c.finQueued && c.sndUna.GreaterThan(c.finSeq) {
			c.enterTimeWait()
		} else {
			c.st = StateClosing
		}
	case StateFinWait2:
		c.enterTimeWait()
	}
}

// inputTimeWait handles a segment in TIME-WAIT: the peer's retransmitted
// FIN is acknowledged again and restarts the 2·MSL wait; an exact RST
// ends it; a new SYN may reuse the 4-tuple (RFC 6191).
func (c *Conn) inputTimeWait(seg *segment, now time.Time) {
	f := seg.flags
	switch {
	case f&wire.TCPFlagRST != 0:
		if seg.seq == c.rcvNxt {
			c.toClosed(nil)
		} else if c.acceptable(seg) {
			c.challengeAck(now)
		}
	case f&wire.TCPFlagSYN != 0 && f&wire.TCPFlagACK == 0:
		if c.timeWaitReusable(seg) {
			c.p.stats.TimeWaitReused.Inc()
			c.toClosed(nil)
			c.reuseSYN = &segment{}
			*c.reuseSYN = *seg
			seg.pkt = nil // handed on with the SYN
			return
		}
		c.challengeAck(now)
	case c.tsOK && seg.opts.HasTimestamps && int32(seg.opts.TSVal-c.tsRecent) < 0:
		c.p.stats.PAWSDrops.Inc()
		c.outOfWindowAck(seg, now)
	case f&wire.TCPFlagFIN != 0:
		c.ackNow = true
		c.arm(tSlow, 2*dur(&c.p.tun.MSL))
	default:
		if seg.payloadLen > 0 || !c.acceptable(seg) {
			c.outOfWindowAck(seg, now)
		}
	}
}

// timeWaitReusable reports whether a SYN may end TIME-WAIT early: with
// timestamps, when its TSval is newer than TS.Recent (RFC 6191 §2);
// without, when its sequence number is past rcv.nxt (RFC 9293 §3.6.1,
// RFC 1122 §4.2.2.13).
func (c *Conn) timeWaitReusable(seg *segment) bool {
	if c.tsOK && seg.opts.HasTimestamps {
		return int32(seg.opts.TSVal-c.tsRecent) > 0
	}
	return seg.seq.GreaterThan(c.rcvNxt)
}

// challengeAck sends an ACK for RFC 5961 (§3.2, §4.2, §5.2), at most
// net.inet.tcp.challenge_ack_limit per second per connection (§7).
func (c *Conn) challengeAck(now time.Time) {
	if now.Sub(c.timeOf(c.chalStart)) >= time.Second {
		c.chalStart, c.chalCount = c.stampOf(now), 0
	}
	if int(c.chalCount) >= int(c.p.tun.ChallengeACKLimit.Load()) {
		c.p.stats.ChallengeLimited.Inc()
		return
	}
	c.chalCount++
	c.p.stats.ChallengeACKs.Inc()
	c.ackNow = true
}

// outOfWindowAck answers an unacceptable segment with an ACK (§3.10.7.4)
// — data segments always, others within the challenge-ACK budget, so two
// stacks cannot ping-pong ACKs without end.
func (c *Conn) outOfWindowAck(seg *segment, now time.Time) {
	if seg.payloadLen > 0 {
		c.ackNow = true
		return
	}
	c.challengeAck(now)
}

// rcvRTTMeasure estimates the RTT on the receive side from the echo of
// our timestamp in data (for receive-buffer auto-tuning).
func (c *Conn) rcvRTTMeasure(seg *segment, now time.Time) {
	if !c.tsOK || !seg.opts.HasTimestamps || seg.opts.TSEcr == 0 {
		return
	}
	d := int32(c.tsNow(now) - seg.opts.TSEcr)
	if d < 0 {
		return
	}
	m := max(time.Duration(d)*time.Millisecond, time.Millisecond)
	if c.drs.rtt == 0 || m < c.drs.rtt {
		c.drs.rtt = m
	} else {
		c.drs.rtt = (7*c.drs.rtt + m) / 8
	}
}
