package tcp

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"ustack/internal/clock"
	"ustack/internal/seqnum"
	"ustack/proto"
	"ustack/wire"
)

// The listen side (RFC 9293 §3.10.7.2, LISTEN; §3.10.7.4 for the
// half-open SYN-RECEIVED entries):
//
//	SYN ──▶ accept queue full? drop (listen overflow)
//	    ──▶ SYN queue full (or syncookies=2)? cookie SYN-ACK, no state
//	    ──▶ SYN queue entry, SYN-ACK, retransmitted on a timer
//	ACK ──▶ SYN queue entry with SEG.ACK = ISS+1? ──▶ connection
//	    ──▶ cookies sent lately and the cookie holds? ──▶ connection
//	    ──▶ RST
//	connection ──▶ accept queue (full: the ACK is dropped and the
//	               entry kept, as Linux does) ──▶ Accept
//
// A half-open entry is small and has one timer. The accept queue holds
// connections in ESTABLISHED (or later): Accept returns only completed
// handshakes.

// Listener is a passive-open socket. Its methods are safe for concurrent
// use and never block.
type Listener struct {
	p       *Protocol
	addr    netip.AddrPort
	opts    Options
	backlog int
	ready   chan struct{} // cap 1

	// lastCookie is when a cookie was last sent (ns since the stack's
	// epoch, 0: never). ACKs are checked as cookies only while cookies
	// may be outstanding.
	lastCookie atomic.Int64

	mu      sync.Mutex
	closed  bool
	synq    map[connID]*synEntry
	acceptq []*Conn
}

// synEntry is a half-open connection: a SYN answered with a SYN-ACK.
type synEntry struct {
	id       connID
	iss, irs seqnum.Value
	// The options agreed: the peer's MSS, the shifts (-1: no window
	// scaling), SACK and timestamps; ours to send in SYN-ACKs.
	mss                  int
	sndWScale, rcvWScale int
	sackOK, tsOK         bool
	tsRecent, tsOffset   uint32
	advMSS               uint16
	wnd                  uint16
	sent                 time.Time // first SYN-ACK, for the RTT sample
	retrans              int
	timer                clock.Timer
}

// Listen makes a listener on laddr. An invalid or unspecified address
// listens on every local address of the family; port 0 picks a free
// port (see Addr). backlog bounds the accept queue (at least 1, at most
// net.inet.tcp.somaxconn; 0 or less takes the maximum); the SYN queue
// holds min(backlog, net.inet.tcp.max_syn_backlog) half-open connections.
// o is inherited by the accepted connections. Errors: EADDRINUSE when a
// listener or, without ReuseAddr on both sides, a connection holds an
// overlapping address on the port (ReuseAddr also binds over
// connections in TIME_WAIT); EADDRNOTAVAIL for an address not local;
// EINVAL for a multicast address.
func (p *Protocol) Listen(laddr netip.AddrPort, backlog int, o Options) (*Listener, error) {
	a := laddr.Addr().Unmap()
	if isWildcard(a) {
		a = wildcard(a)
	}
	if a.IsMulticast() || a == limitedBroadcast {
		return nil, syscall.EINVAL
	}
	if !a.IsUnspecified() && !p.net.LocalAddr(a) {
		return nil, syscall.EADDRNOTAVAIL
	}
	maxb := int(p.tun.Somaxconn.Load())
	if backlog <= 0 || backlog > maxb {
		backlog = maxb
	}
	l := &Listener{p: p, addr: netip.AddrPortFrom(a, laddr.Port()), opts: o,
		backlog: backlog, ready: make(chan struct{}, 1), synq: make(map[connID]*synEntry)}
	if err := p.bindListener(l, o.ReuseAddr); err != nil {
		return nil, err
	}
	return l, nil
}

// Addr is the listening address and port.
func (l *Listener) Addr() netip.AddrPort { return l.addr }

// Readable receives a value when a connection is ready to accept or the
// listener closes.
func (l *Listener) Readable() <-chan struct{} { return l.ready }

// Accept takes the oldest completed connection without blocking:
// ErrWouldBlock when there is none, net.ErrClosed after Close.
func (l *Listener) Accept() (*Conn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, net.ErrClosed
	}
	if len(l.acceptq) == 0 {
		return nil, ErrWouldBlock
	}
	c := l.acceptq[0]
	l.acceptq[0] = nil
	l.acceptq = l.acceptq[1:]
	if len(l.acceptq) > 0 {
		signal(l.ready) // more to take: keep the socket readable
	}
	return c, nil
}

// Close stops listening. Connections still in the accept queue are reset
// and half-open ones answered with RST (RFC 9293 §3.10.4 ABORT for both).
// Closing twice does nothing.
func (l *Listener) Close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	synq, acceptq := l.synq, l.acceptq
	l.synq, l.acceptq = nil, nil
	l.mu.Unlock()
	l.p.unbindListener(l)
	for _, e := range synq {
		e.timer.Stop()
		l.p.sendControl(e.id, e.iss+1, 0, wire.TCPFlagRST, 0, nil)
	}
	for _, c := range acceptq {
		c.Abort()
	}
	signal(l.ready)
}

// appendInfos lists the listener and its half-open connections.
func (l *Listener) appendInfos(infos []proto.SocketInfo) []proto.SocketInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return infos
	}
	// ss(8) shows a listener's accept queue as Recv-Q, its backlog as Send-Q.
	infos = append(infos, proto.SocketInfo{Proto: "tcp", Local: l.addr, State: "LISTEN",
		RecvQ: len(l.acceptq), SendQ: l.backlog})
	for id := range l.synq {
		infos = append(infos, proto.SocketInfo{Proto: "tcp", Local: id.local, Remote: id.remote, State: "SYN-RECV"})
	}
	return infos
}

// synqLimit bounds the SYN queue.
func (l *Listener) synqLimit() int {
	return min(l.backlog, int(l.p.tun.MaxSynBacklog.Load()))
}

// input takes a segment for the listener (no connection matched) and
// its payload.
func (l *Listener) input(seg *segment) {
	const (
		syn = wire.TCPFlagSYN
		ack = wire.TCPFlagACK
		rst = wire.TCPFlagRST
	)
	switch f := seg.flags; {
	case f&rst != 0:
		l.inputRST(seg)
		seg.release()
	case f&ack != 0 && f&syn == 0:
		l.inputACK(seg)
	case f&ack != 0:
		// RFC 9293 §3.10.7.2: any ACK reaching LISTEN is bad.
		l.p.replyRST(seg)
		seg.release()
	case f&syn != 0:
		// Data on a SYN is not queued (no TCP Fast Open): the peer sends
		// it again once the connection is up.
		seg.release()
		l.inputSYN(seg)
	default:
		// RFC 9293 §3.10.7.2: other text or control: drop.
		seg.release()
	}
}

// inputRST ends a half-open connection on a RST whose sequence number is
// exactly the next one expected (RFC 5961 §3.2; RFC 9293 §3.10.7.4:
// back to LISTEN). Anything else is ignored (RFC 9293 §3.10.7.2).
func (l *Listener) inputRST(seg *segment) {
	l.mu.Lock()
	e := l.synq[seg.id]
	if e == nil || seg.seq != e.irs+1 {
		l.mu.Unlock()
		return
	}
	delete(l.synq, seg.id)
	l.mu.Unlock()
	e.timer.Stop()
	l.p.stats.AttemptFails.Inc()
}

// handshake is what the entry agreed, completed by the final ACK.
func (e *synEntry) handshake(seg *segment, o Options, now time.Time) *handshake {
	h := &handshake{id: e.id, iss: e.iss, irs: e.irs, mss: e.mss,
		sndWScale: e.sndWScale, rcvWScale: e.rcvWScale, sackOK: e.sackOK,
		tsOK: e.tsOK, tsRecent: e.tsRecent, tsOffset: e.tsOffset, opts: o}
	h.sndWnd = int(seg.wnd)
	if e.sndWScale >= 0 {
		h.sndWnd <<= e.sndWScale
	}
	if e.tsOK && seg.opts.HasTimestamps {
		h.tsRecent = seg.opts.TSVal
	}
	// Karn: a retransmitted SYN-ACK gives no sample.
	if e.retrans == 0 {
		h.rtt = now.Sub(e.sent)
	}
	return h
}

// inputACK completes a handshake or answers with RST. It takes the
// segment's payload.
func (l *Listener) inputACK(seg *segment) {
	p := l.p
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		p.toListenerClosed(seg)
		return
	}
	e := l.synq[seg.id]
	if e == nil {
		l.mu.Unlock()
		l.cookieACK(seg)
		return
	}
	// RFC 9293 §3.10.7.4, SYN-RECEIVED: the ACK must acknowledge our SYN
	// and nothing more (SND.UNA < SEG.ACK =< SND.NXT), or it draws a RST.
	if seg.ack != e.iss+1 {
		l.mu.Unlock()
		p.replyRST(seg)
		seg.release()
		return
	}
	// The final ACK starts at RCV.NXT; anything else is an old duplicate.
	if seg.seq != e.irs+1 {
		l.mu.Unlock()
		seg.release()
		return
	}
	if len(l.acceptq) >= l.backlog {
		// Linux: drop the ACK and keep the entry; the SYN-ACK timer
		// brings the ACK back when the queue may have room.
		l.mu.Unlock()
		p.stats.ListenOverflows.Inc()
		p.stats.ListenDrops.Inc()
		seg.release()
		return
	}
	delete(l.synq, seg.id)
	e.timer.Stop()
	l.establish(seg, e.handshake(seg, l.opts, seg.arrived))
}

// establish makes the connection of a completed handshake and queues it
// for Accept; l.mu is held and released. It takes the segment's payload,
// which the connection receives when there is any (or a FIN).
func (l *Listener) establish(seg *segment, h *handshake) {
	p := l.p
	k, ok := p.reserveAccepted(h.id, l.opts.ReuseAddr)
	if !ok {
		// The 4-tuple came into use meanwhile (a Dial to ourselves):
		// the handshake is lost.
		l.mu.Unlock()
		p.stats.ListenDrops.Inc()
		seg.release()
		return
	}
	c := newEstablished(p, h)
	parked := p.conns.publish(k, c)
	l.acceptq = append(l.acceptq, c)
	l.mu.Unlock()
	signal(l.ready)
	p.stats.PassiveOpens.Inc()
	if seg.payloadLen > 0 || seg.flags&wire.TCPFlagFIN != 0 {
		p.stats.Delivered.Inc()
		c.deliver(seg)
	} else {
		seg.release()
	}
	p.deliverParked(c, parked)
}

// toListenerClosed answers a segment that reached a listener as it
// closed: as if the port were closed.
func (p *Protocol) toListenerClosed(seg *segment) {
	p.stats.Drop(proto.DropNoEndpoint)
	p.replyRST(seg)
	seg.release()
}

// synOptions are the options of a SYN-ACK for a SYN with the options
// agreed.
func (p *Protocol) synOptions(advMSS uint16, rcvWScale int, sackOK, tsOK bool, tsVal, tsEcr uint32) wire.TCPOptions {
	o := wire.TCPOptions{MSS: advMSS, HasMSS: true, SACKPermitted: sackOK}
	if rcvWScale >= 0 {
		o.WScale, o.HasWScale = uint8(rcvWScale), true
	}
	if tsOK {
		o.TSVal, o.TSEcr, o.HasTimestamps = tsVal, tsEcr, true
	}
	return o
}

// advertise is our MSS for the connection (RFC 6691: the route's MTU less
// the fixed IP and TCP headers, clamped by Options.MSS) and the receive
// window of its SYN-ACK (never scaled, RFC 7323 §2.2).
func (l *Listener) advertise(id connID) (mss uint16, wnd uint16) {
	p := l.p
	mtu := 1500
	if r, err := p.net.Route(id.remote.Addr(), id.local.Addr(), 0); err == nil && r.MTU > 0 {
		mtu = r.MTU
	}
	ip := wire.IPv4MinHeaderLen
	if !id.local.Addr().Is4() {
		ip = 40
	}
	m := mtu - ip - wire.TCPMinHeaderLen
	if l.opts.MSS > 0 && l.opts.MSS < m {
		m = l.opts.MSS
	}
	m = min(max(m, minMSS), 65535)
	rcv := int(p.tun.RmemDefault.Load())
	if l.opts.RecvBuffer > 0 {
		rcv = l.opts.RecvBuffer
	}
	return uint16(m), uint16(min(rcv, 65535))
}

// ourWScale is the window shift we offer when the peer offers scaling.
func (l *Listener) ourWScale() int {
	rcv := int(l.p.tun.RmemDefault.Load())
	if l.opts.RecvBuffer > 0 {
		rcv = l.opts.RecvBuffer
	}
	return int(wscaleFor(max(int(l.p.tun.RmemMax.Load()), rcv)))
}

// inputSYN answers a SYN (its payload already released) with a SYN-ACK,
// from a new SYN queue entry or as a cookie.
func (l *Listener) inputSYN(seg *segment) {
	p := l.p
	now := seg.arrived
	peerMSS := 536 // RFC 9293 §3.7.1: without the option
	if seg.opts.HasMSS {
		peerMSS = int(seg.opts.MSS)
	}
	sndWS, rcvWS := -1, -1
	if seg.opts.HasWScale && p.tun.WindowScaling.Load() {
		// RFC 7323 §2.3: a shift above 14 is taken as 14.
		sndWS, rcvWS = min(int(seg.opts.WScale), wire.TCPMaxWScale), l.ourWScale()
	}
	sackOK := seg.opts.SACKPermitted && p.tun.SACK.Load()
	tsOK := seg.opts.HasTimestamps && p.tun.Timestamps.Load()

	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		p.toListenerClosed(seg)
		return
	}
	if e := l.synq[seg.id]; e != nil {
		// The SYN again: our SYN-ACK was lost, or is on its way. Send it
		// again (the timer keeps its schedule). Another ISN is ignored.
		resend := seg.seq == e.irs
		opts := l.synackOptions(e, now)
		id, iss, irs, wnd := e.id, e.iss, e.irs, e.wnd
		l.mu.Unlock()
		if resend {
			p.stats.SynRetrans.Inc()
			p.sendControl(id, iss, irs+1, wire.TCPFlagSYN|wire.TCPFlagACK, wnd, &opts)
		}
		return
	}
	if len(l.acceptq) >= l.backlog {
		// Linux: a SYN finding the accept queue full is dropped; the
		// peer tries again when the application has caught up.
		l.mu.Unlock()
		p.stats.ListenOverflows.Inc()
		p.stats.ListenDrops.Inc()
		return
	}
	full := len(l.synq) >= l.synqLimit()
	mode := p.tun.Syncookies.Load()
	if mode == 2 || (full && mode == 1) {
		l.mu.Unlock()
		l.sendCookie(seg, cookieOpts{mss: peerMSS, sndWScale: sndWS, sackOK: sackOK, tsOK: tsOK}, now)
		return
	}
	if full {
		l.mu.Unlock()
		p.stats.ListenDrops.Inc()
		return
	}
	advMSS, wnd := l.advertise(seg.id)
	e := &synEntry{id: seg.id, iss: p.isn(seg.id, now), irs: seg.seq, mss: peerMSS,
		sndWScale: sndWS, rcvWScale: rcvWS, sackOK: sackOK, tsOK: tsOK,
		tsRecent: seg.opts.TSVal, tsOffset: p.tsOffset(seg.id), advMSS: advMSS, wnd: wnd, sent: now}
	e.timer = p.clk.AfterFunc(dur(&p.tun.RTOInitial), func() { l.synackTimeout(e) })
	l.synq[seg.id] = e
	opts := l.synackOptions(e, now)
	l.mu.Unlock()
	p.sendControl(e.id, e.iss, e.irs+1, wire.TCPFlagSYN|wire.TCPFlagACK, wnd, &opts)
}

// synackOptions are the options of the entry's SYN-ACK sent at now.
// l.mu is held.
func (l *Listener) synackOptions(e *synEntry, now time.Time) wire.TCPOptions {
	return l.p.synOptions(e.advMSS, e.rcvWScale, e.sackOK, e.tsOK, l.p.tsVal(now, e.tsOffset), e.tsRecent)
}

// synackTimeout retransmits the entry's SYN-ACK with exponential backoff
// (RFC 6298 §5.5 from net.inet.tcp.rto_initial), or drops the entry after
// net.inet.tcp.synack_retries retransmissions.
func (l *Listener) synackTimeout(e *synEntry) {
	p := l.p
	l.mu.Lock()
	if l.closed || l.synq[e.id] != e {
		l.mu.Unlock()
		return
	}
	if e.retrans >= int(p.tun.SynackRetries.Load()) {
		delete(l.synq, e.id)
		l.mu.Unlock()
		p.stats.SynQueueDrops.Inc()
		p.stats.AttemptFails.Inc()
		return
	}
	e.retrans++
	rto := min(dur(&p.tun.RTOInitial)<<e.retrans, dur(&p.tun.RTOMax))
	e.timer.Reset(rto)
	opts := l.synackOptions(e, p.clk.Now())
	l.mu.Unlock()
	p.stats.SynRetrans.Inc()
	p.sendControl(e.id, e.iss, e.irs+1, wire.TCPFlagSYN|wire.TCPFlagACK, e.wnd, &opts)
}

// sendCookie answers a SYN with a SYN cookie SYN-ACK and keeps nothing.
func (l *Listener) sendCookie(seg *segment, o cookieOpts, now time.Time) {
	p := l.p
	iss, o := p.makeCookie(seg.id, seg.seq, o, l.ourWScale(), now)
	ws := o.rcvWScale(l.ourWScale())
	if l.lastCookie.Swap(int64(now.Sub(p.epoch))+1) == 0 {
		p.log.Info("tcp: SYN queue full, sending cookies", "listener", l.addr.String())
	}
	advMSS, wnd := l.advertise(seg.id)
	opts := p.synOptions(advMSS, ws, o.sackOK, o.tsOK,
		cookieTSVal(p.tsVal(now, p.tsOffset(seg.id)), o), seg.opts.TSVal)
	if p.sendControl(seg.id, iss, seg.seq+1, wire.TCPFlagSYN|wire.TCPFlagACK, wnd, &opts) == nil {
		p.stats.SyncookiesSent.Inc()
	}
}

// cookieACK completes a handshake from a SYN cookie, or answers the ACK
// with RST (RFC 9293 §3.10.7.2). It takes the segment's payload.
func (l *Listener) cookieACK(seg *segment) {
	p := l.p
	now := seg.arrived
	last := l.lastCookie.Load()
	if last == 0 || now.Sub(p.epoch)-time.Duration(last-1) > 2*cookiePeriod {
		// No cookie can be outstanding: a stray ACK.
		p.replyRST(seg)
		seg.release()
		return
	}
	o, ok := p.checkCookie(seg.id, seg.seq, seg.ack, seg.opts.HasTimestamps, seg.opts.TSEcr, l.ourWScale(), now)
	if !ok {
		p.stats.SyncookiesFailed.Inc()
		p.replyRST(seg)
		seg.release()
		return
	}
	p.stats.SyncookiesRecv.Inc()
	ws := o.rcvWScale(l.ourWScale())
	h := &handshake{id: seg.id, iss: seg.ack - 1, irs: seg.seq - 1, mss: o.mss,
		sndWScale: o.sndWScale, rcvWScale: ws, sackOK: o.sackOK, tsOK: o.tsOK,
		tsOffset: p.tsOffset(seg.id), opts: l.opts}
	h.sndWnd = int(seg.wnd)
	if o.sndWScale >= 0 {
		h.sndWnd <<= o.sndWScale
	}
	if o.tsOK {
		h.tsRecent = seg.opts.TSVal
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		p.toListenerClosed(seg)
		return
	}
	if len(l.acceptq) >= l.backlog {
		// The peer believes the connection is up; its retransmission
		// carries the cookie again.
		l.mu.Unlock()
		p.stats.ListenOverflows.Inc()
		p.stats.ListenDrops.Inc()
		seg.release()
		return
	}
	l.establish(seg, h)
}

// handleICMP drops a half-open connection whose SYN-ACK drew a hard ICMP
// error (RFC 5927 §4.1: the quoted sequence number must be our ISN).
// Fragmentation needed is left alone: a SYN-ACK is small.
func (l *Listener) handleICMP(id connID, seq seqnum.Value, e *proto.ICMPError) {
	if e.Kind == proto.ErrFragNeeded {
		return
	}
	l.mu.Lock()
	ent := l.synq[id]
	if ent == nil || ent.iss != seq {
		l.mu.Unlock()
		return
	}
	delete(l.synq, id)
	l.mu.Unlock()
	ent.timer.Stop()
	l.p.stats.AttemptFails.Inc()
}

// reuseTimeWait gives a listener the SYN that ended c, a connection in
// TIME_WAIT, early (RFC 6191; RFC 9293 §3.10.7.4): c is unhashed and the
// SYN handled as if c were gone. The engine calls it, after releasing c's
// lock, having decided the SYN may reuse the 4-tuple. It takes syn's
// payload.
func (p *Protocol) reuseTimeWait(c *Conn, syn *segment) {
	p.remove(c)
	p.toListener(syn)
}
