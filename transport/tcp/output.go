package tcp

import (
	"time"

	"ustack/buf"
	"ustack/internal/seqnum"
	"ustack/link"
	"ustack/link/offload"
	"ustack/wire"
)

// Output: deciding what to send and building segments.
//
//	output ──► retransmit (lost segments first, RFC 6675 NextSeg rule 1)
//	       └─► sendNew (new data: cwnd, the peer's window, Nagle, SWS)
//	              └─► emitData ──► emit (header, options, window, checksum
//	                                     or offload) ──► c.outq ──► unlock
//	                                     writes it through proto.Network

// dataState reports whether the state allows sending data or a FIN.
func (c *Conn) dataState() bool {
	switch c.st {
	case StateEstablished, StateCloseWait, StateFinWait1, StateClosing, StateLastAck:
		return true
	}
	return false
}

// finPending reports whether a FIN is queued and not yet sent.
func (c *Conn) finPending() bool { return c.finQueued && c.sndNxt.LessThanEq(c.finSeq) }

// unsent is the number of queued data bytes never sent.
func (c *Conn) unsent() int {
	end := c.sendq.end()
	if !c.sndNxt.LessThan(end) {
		return 0
	}
	return int(c.sndNxt.Size(end))
}

// pipe is the data in flight (RFC 6675 §4 "pipe"): sent, not
// acknowledged, not SACKed, not deemed lost; retransmissions count.
func (c *Conn) pipe() int {
	if !c.sndUna.LessThan(c.sndNxt) {
		return 0
	}
	if c.flight == nil {
		return int(c.sndUna.Size(c.sndNxt)) // a SYN: nothing marked
	}
	p := int(c.sndUna.Size(c.sndNxt)) - c.sb.sacked - c.sb.lost + c.sb.retrans - c.rec.renoSacked
	return max(p, 0)
}

// flightSize is RFC 5681's FlightSize: sent and not cumulatively
// acknowledged. Controllers get it, rather than pipe, at a congestion
// event (RFC 5681 §3.1 eqn. 4).
func (c *Conn) flightSize() int {
	if !c.sndUna.LessThan(c.sndNxt) {
		return 0
	}
	return int(c.sndUna.Size(c.sndNxt))
}

// dataOptionsLen is the length of the options the next data segment
// carries: timestamps and the SACK blocks there are to report.
func (c *Conn) dataOptionsLen() int {
	var o wire.TCPOptions
	if c.tsOK {
		o.HasTimestamps = true
	}
	if c.sackOK && (c.hasDSACK || len(c.recvq.ooo) > 0) {
		n := len(c.recvq.ooo)
		if c.hasDSACK {
			n++
		}
		o.NumSACK = min(n, 3)
		if !c.tsOK {
			o.NumSACK = min(n, wire.TCPMaxSACKBlocks)
		}
	}
	return o.Len()
}

// segSize is the payload of a full segment now (RFC 6691: the MSS less the
// options it carries).
func (c *Conn) segSize() int {
	return max(c.mssBase-c.dataOptionsLen(), minMSS/2)
}

// gsoOK reports whether the route takes large TCP segments.
func (c *Conn) gsoOK() bool {
	if c.ipHdr == wire.IPv4MinHeaderLen {
		return c.route.Caps.Has(link.CapTSO4)
	}
	return c.route.Caps.Has(link.CapTSO6)
}

// gsoMax is the most payload one large segment carries: up to 64 KB of
// IP packet, in whole segments.
func gsoMax(ipHdr, seg int) int {
	n := (65535 - ipHdr - wire.TCPMaxHeaderLen) / seg
	return max(n, 1) * seg
}

// output sends what the windows allow: lost segments first, then new
// data. It arms the retransmission and persist timers as needed.
func (c *Conn) output() { c.outputForce(false) }

func (c *Conn) outputForce(force bool) {
	if !c.dataState() {
		return
	}
	if c.flight == nil {
		if c.unsent() == 0 && !c.finPending() {
			// Nothing sent yet, nothing to send: what the loop below
			// does on the zero flight state.
			c.cwndLimited = false
			if c.sendq.end() == c.sndNxt && c.pipe() < c.ccs.CWnd {
				c.idleAppLimited = true // rateCheckAppLimited
			}
			return
		}
		c.ensureFlight()
	}
	now := c.now()
	c.cwndLimited = false
	for {
		if c.paceBlocked(now) {
			break
		}
		pipe := c.pipe()
		if pipe >= c.ccs.CWnd {
			c.cwndLimited = c.sb.lostPending > 0 || c.unsent() > 0
			break
		}
		if i := c.sb.nextLost(); i >= 0 {
			c.retransmit(i, now, false)
			continue
		}
		if !c.sendNew(now, c.ccs.CWnd-pipe, force) {
			break
		}
		force = false
	}
	if c.sndUna == c.sndNxt && (c.unsent() > 0 || c.finPending()) {
		c.armPersist()
	}
	c.rateCheckAppLimited()
}

// sendNew sends one segment of new data (a large one when the route
// allows) within budget bytes of congestion window and the peer's
// window, and reports whether it sent. A small segment goes only when
// Nagle's algorithm (RFC 9293 §3.7.4) and sender silly-window avoidance
// (§3.8.6.2.1) allow it, or when forced (persist timer, TLP).
func (c *Conn) sendNew(now time.Time, budget int, force bool) bool {
	start := c.sndNxt
	avail := c.unsent()
	fin := c.finPending()
	if avail == 0 && !fin {
		return false
	}
	seg := c.segSize()
	wndRoom := int(int32(c.sndUna.Add(seqnum.Size(c.sndWnd)) - start))
	maxLen := seg
	if c.gsoOK() && !force {
		maxLen = gsoMax(int(c.ipHdr), seg)
	}
	cw := (budget + seg - 1) / seg * seg
	l := min(avail, maxLen, cw)
	if l > wndRoom {
		l = max(wndRoom, 0)
	}
	if l < avail && l > seg {
		l -= l % seg // whole segments; the tail waits for more
	}
	sendFin := fin && l == avail && wndRoom >= l+1
	if l < seg && !force {
		ok := l == avail && (c.opts.NoDelay || c.sndUna == c.sndNxt || fin)
		if !ok && l > 0 && c.maxSndWnd > 0 && l >= c.maxSndWnd/2 {
			ok = true
		}
		if !ok {
			return false
		}
	}
	if l == 0 && !sendFin {
		return false
	}
	end := start.Add(seqnum.Size(l))
	if sendFin {
		end++
	}
	c.xmitNew(start, end, seg, now)
	return true
}

// xmitNew sends [start, end) for the first time, recording one
// scoreboard entry per segment (the FIN joins the last).
func (c *Conn) xmitNew(start, end seqnum.Value, seg int, now time.Time) {
	c.ensureFlight()
	inFlight := c.pipe()
	c.emitData(start, end, seg, now)
	n := int(start.Size(end))
	dataEnd, hasFin := end, false
	if c.finQueued && end.GreaterThan(c.finSeq) {
		dataEnd, hasFin = c.finSeq, true
	}
	add := func(a, b seqnum.Value) {
		c.txCount++
		s := txSeg{seqRange: seqRange{a, b}, xmit: now, txn: c.txCount}
		c.rateOnSend(&s, now, inFlight)
		c.sb.add(s)
	}
	for a := start; a.LessThan(dataEnd); {
		b := a.Add(seqnum.Size(seg))
		if !b.LessThan(dataEnd) {
			b = dataEnd
			if hasFin {
				b = end
			}
		}
		add(a, b)
		a = b
	}
	if start == dataEnd && hasFin {
		add(start, end) // a bare FIN
	}
	if c.sndUna == c.sndNxt {
		c.stallStart = c.stampOf(now)
	}
	c.sndNxt = end
	c.stats.bytesSent += uint64(start.Size(dataEnd))
	c.lastDataSent = c.stampOf(now)
	if c.rec.state == caRecovery {
		c.rec.prrOut += n
	}
	c.ccs.InFlight = c.pipe() // this send included
	c.cc.OnSent(&c.ccs, now, n)
	c.paceSent(now, n)
	if c.rec.state == caOpen && !c.rack.tlpActive {
		c.armTLP(now)
	}
}

// retransmit sends segs[i] again (cutting it to the current segment
// size first).
func (c *Conn) retransmit(i int, now time.Time, tlp bool) {
	seg := c.segSize()
	if c.sb.segs[i].len() > seg {
		c.sb.split(i, c.sb.segs[i].start.Add(seqnum.Size(seg)))
	}
	inFlight := c.pipe()
	s := &c.sb.segs[i]
	c.emitData(s.start, s.end, seg, now)
	n := s.len()
	c.sb.setFlags(i, sfRetrans|sfEverRetrans, 0)
	s = &c.sb.segs[i]
	s.xmit = now
	c.txCount++
	s.txn = c.txCount
	c.rateOnSend(s, now, inFlight)
	c.p.stats.RetransSegs.Inc()
	c.stats.totalRetrans++
	c.stats.bytesRetrans += uint64(n)
	if u := &c.undo; u.active {
		end := s.end
		if c.finQueued && end.GreaterThan(c.finSeq) {
			end = c.finSeq // a FIN is never reported by D-SACK
		}
		u.noteRetrans(s.start, end)
		if !u.hasStamp {
			u.stamp, u.stampEnd, u.hasStamp = c.tsNow(now), s.end, true
		}
	}
	if c.rec.state == caRecovery {
		c.rec.prrOut += n
	}
	c.ccs.InFlight = c.pipe() // this send included
	c.cc.OnSent(&c.ccs, now, n)
	c.paceSent(now, n)
}

// emitData builds and queues the segment carrying [start, end): data
// from the send queue and the FIN if end covers it. seg is the segment
// size for a large segment.
func (c *Conn) emitData(start, end seqnum.Value, seg int, now time.Time) {
	dataEnd, fin := end, false
	if c.finQueued && end.GreaterThan(c.finSeq) {
		dataEnd, fin = c.finSeq, true
	}
	n := 0
	if dataEnd.GreaterThan(start) {
		n = int(start.Size(dataEnd))
	}
	var payload *buf.Packet
	if n > 0 {
		payload = c.sendq.slice(start, n)
	}
	flags := wire.TCPFlagACK
	if fin {
		flags |= wire.TCPFlagFIN
	}
	if n > 0 && dataEnd == c.sendq.end() {
		flags |= wire.TCPFlagPSH
	}
	gso := 0
	if n > seg {
		gso = seg
	}
	c.emit(start, flags, payload, gso, now)
	if c.tim.when[tRexmt].IsZero() || c.tim.persist {
		c.tim.persist = false
		c.arm(tRexmt, c.rtt.current(c))
	}
}

// emit builds a segment in a synchronized state: the header with the
// acknowledgment, window and options (timestamps, SACK), then the
// checksum or its offload, and queues it. It takes ownership of payload
// (nil for none); gso > 0 makes it a large segment of gso-byte segments.
func (c *Conn) emit(seq seqnum.Value, flags wire.TCPFlags, payload *buf.Packet, gso int, now time.Time) {
	var o wire.TCPOptions
	if c.tsOK {
		o.HasTimestamps, o.TSVal, o.TSEcr = true, c.tsNow(now), c.tsRecent
	}
	if flags&wire.TCPFlagACK != 0 {
		c.fillSACK(&o)
	}
	f := wire.TCPFields{
		SrcPort: c.tid.local.Port(), DstPort: c.tid.remote.Port(),
		Seq: uint32(seq), Ack: uint32(c.rcvNxt), Flags: flags,
		Window: c.windowField(), Options: o,
	}
	c.emitFields(&f, payload, gso)
	c.stats.segsOut++
	if payload != nil {
		c.stats.dataSegsOut++
	}
	if flags&wire.TCPFlagACK != 0 {
		c.ackSent()
	}
}

// emitFields encodes f in front of payload (or an empty packet), sets
// the checksum or its offload and queues the segment. It takes ownership
// of payload.
func (c *Conn) emitFields(f *wire.TCPFields, payload *buf.Packet, gso int) {
	hl := f.Len()
	pkt := payload
	if pkt == nil {
		pkt = buf.New(c.p.net.MaxHeaderLen()+hl, 0)
	}
	h := wire.TCP(pkt.Prepend(hl))
	f.Checksum = 0
	f.Encode(h)
	pseudo := wire.PseudoHeaderChecksum(wire.IPProtoTCP, c.tid.local.Addr(), c.tid.remote.Addr(), pkt.Len())
	switch {
	case gso > 0:
		t := buf.GSOTCPv4
		if c.ipHdr != wire.IPv4MinHeaderLen {
			t = buf.GSOTCPv6
		}
		h.SetChecksum(pseudo)
		pkt.Offload = buf.Offload{NeedsCsum: true, CsumStart: 0, CsumOffset: 16,
			GSO: t, GSOSize: uint16(gso), HdrLen: uint16(hl)}
	case c.route.Caps.Has(link.CapTxChecksum):
		// RFC 9293 §3.1 checksum, finished by the link: the field holds
		// the pseudo-header sum; CsumStart counts from the TCP header and
		// buf moves it as headers are prepended.
		h.SetChecksum(pseudo)
		pkt.Offload = buf.Offload{NeedsCsum: true, CsumStart: 0, CsumOffset: 16}
	default:
		h.SetChecksum(^wire.ChecksumCombine(pseudo, offload.Sum(pkt, 0, -1)))
		c.p.stats.SlowPathChecksums.Inc()
	}
	c.outq = append(c.outq, pkt)
	c.p.stats.OutPackets.Inc()
	c.p.stats.OutBytes.Add(uint64(pkt.Len()))
}

// ackSent notes that a segment carrying the current acknowledgment left:
// no ACK is owed any more.
func (c *Conn) ackSent() {
	c.lastAckSent = c.rcvNxt
	c.ackPending = 0
	c.ackNow, c.ackData = false, false
	if c.quickAcks > 0 {
		c.quickAcks--
	}
	c.disarm(tDelack)
}

// sendAck sends a bare ACK.
func (c *Conn) sendAck() {
	if !c.st.synchronized() {
		return
	}
	c.emit(c.sndNxt, wire.TCPFlagACK, nil, 0, c.now())
}

// sendProbe sends a keep-alive or zero-window probe: an ACK with an old
// sequence number, which the peer answers with an ACK (RFC 1122
// §4.2.3.6; RFC 9293 §3.8.6.1).
func (c *Conn) sendProbe(now time.Time) {
	c.emit(c.sndUna-1, wire.TCPFlagACK, nil, 0, now)
}

// sendRST sends <SEQ=seq><CTL=RST>.
func (c *Conn) sendRST(seq seqnum.Value) {
	f := wire.TCPFields{SrcPort: c.tid.local.Port(), DstPort: c.tid.remote.Port(),
		Seq: uint32(seq), Flags: wire.TCPFlagRST}
	c.emitFields(&f, nil, 0)
	c.p.stats.OutRsts.Inc()
}

// sendRSTAck sends <SEQ=seq><ACK=ack><CTL=RST,ACK> (RFC 9293
// §3.10.7.1, for a segment without ACK).
func (c *Conn) sendRSTAck(seq, ack seqnum.Value) {
	f := wire.TCPFields{SrcPort: c.tid.local.Port(), DstPort: c.tid.remote.Port(),
		Seq: uint32(seq), Ack: uint32(ack), Flags: wire.TCPFlagRST | wire.TCPFlagACK}
	c.emitFields(&f, nil, 0)
	c.p.stats.OutRsts.Inc()
}

// sendSYN sends the SYN (SYN-SENT) or SYN-ACK (SYN-RECEIVED, after a
// simultaneous open) with the options offered or agreed: MSS (RFC 6691),
// window scale (RFC 7323 §2), SACK-permitted (RFC 2018), timestamps (RFC
// 7323 §3). Its window is never scaled (RFC 7323 §2.2).
func (c *Conn) sendSYN() {
	now := c.now()
	f := wire.TCPFields{SrcPort: c.tid.local.Port(), DstPort: c.tid.remote.Port(),
		Seq: uint32(c.iss), Flags: wire.TCPFlagSYN, Window: uint16(min(c.rcvBuf, 65535))}
	o := &f.Options
	o.HasMSS, o.MSS = true, uint16(min(c.advMSS, 65535))
	if c.st == StateSynReceived {
		f.Flags |= wire.TCPFlagACK
		f.Ack = uint32(c.rcvNxt)
		if c.wsOK {
			o.HasWScale, o.WScale = true, c.rcvWS
		}
		o.SACKPermitted = c.sackOK
		if c.tsOK {
			o.HasTimestamps, o.TSVal, o.TSEcr = true, c.tsNow(now), c.tsRecent
		}
		c.rcvAdv = seqnum.Max(c.rcvAdv, c.rcvNxt.Add(seqnum.Size(f.Window)))
	} else {
		c.offer.ws = c.p.tun.WindowScaling.Load()
		c.offer.sack = c.p.tun.SACK.Load()
		c.offer.ts = c.p.tun.Timestamps.Load()
		if c.offer.ws {
			o.HasWScale, o.WScale = true, c.rcvWS
		}
		o.SACKPermitted = c.offer.sack
		if c.offer.ts {
			o.HasTimestamps, o.TSVal = true, c.tsNow(now)
		}
	}
	c.emitFields(&f, nil, 0)
	c.stats.segsOut++
	if c.synRetries == 0 {
		c.synSentAt = c.stampOf(now)
	}
	c.sndNxt = c.iss + 1
}

// tsNow is our timestamp clock now (RFC 7323 §5.4: 1 ms ticks, a
// per-connection offset), the clock the listener's SYN-ACK used too.
func (c *Conn) tsNow(now time.Time) uint32 { return c.p.tsVal(now, c.tsOffset) }

// windowField is the window to advertise, as the 16-bit field (scaled
// by rcvWS), with receiver silly-window avoidance (RFC 9293 §3.8.6.2.2:
// the right edge moves only by at least min(buffer/2, MSS)) and without
// ever moving the right edge back (§3.8.6). It records the edge.
func (c *Conn) windowField() uint16 {
	free := max(c.rcvBuf-c.recvq.n-c.recvq.oooBytes, 0)
	cur := 0
	if c.rcvAdv.GreaterThan(c.rcvNxt) {
		cur = int(c.rcvNxt.Size(c.rcvAdv))
	}
	wnd := cur
	if free > cur && free-cur >= min(c.rcvBuf/2, c.advMSS) {
		wnd = free
	}
	shift := uint(0)
	if c.wsOK {
		shift = uint(c.rcvWS)
	}
	wnd = min(wnd, 65535<<shift)
	field := wnd >> shift
	if field<<shift < cur { // rounding must not move the edge back
		field = min((cur+(1<<shift)-1)>>shift, 65535)
	}
	c.rcvAdv = seqnum.Max(c.rcvAdv, c.rcvNxt.Add(seqnum.Size(field<<shift)))
	return uint16(field)
}

// ---- Pacing: a timer-driven release when the controller sets a rate. ----

type paceState struct {
	next time.Time // earliest time the next segment may leave
}

// paceBlocked reports whether pacing holds sending now, arming the pace
// timer when it does.
func (c *Conn) paceBlocked(now time.Time) bool {
	if c.ccs.PacingRate == 0 || !now.Before(c.pace.next) {
		return false
	}
	if c.tim.when[tPace].IsZero() {
		c.arm(tPace, c.pace.next.Sub(now))
	}
	return true
}

// paceSent advances the release time by n bytes at the pacing rate.
func (c *Conn) paceSent(now time.Time, n int) {
	r := c.ccs.PacingRate
	if r == 0 {
		return
	}
	if c.pace.next.Before(now) {
		c.pace.next = now
	}
	c.pace.next = c.pace.next.Add(time.Duration(uint64(n) * uint64(time.Second) / r))
}
