package tcp

import (
	"errors"
	"sync"
	"syscall"
	"time"

	"ustack/buf"
	"ustack/internal/seqnum"
	"ustack/proto"
	"ustack/transport/tcp/cc"
	"ustack/wire"
)

// The connection engine: one TCP connection's state machine (RFC 9293
// §3.3.2), from the SYN it sends or the handshake a listener completed to
// CLOSED. It does no I/O of its own: segments go out through the
// protocol's proto.Network, time comes from the protocol's clock and every
// timer is a clock.AfterFunc. One mutex per connection guards everything;
// there is no goroutine per connection. Calls that leave the connection
// (writing packets, unhashing it) are made after the mutex is released
// (unlock), so a network that loops packets back inline cannot deadlock.
//
// Files: conn.go (the type and its life), api.go (the API the socket
// layer uses), input.go (segment arrival), output.go (segment building
// and the send decision), sendq.go and recvq.go (the byte queues),
// sack.go (the retransmission scoreboard and SACK blocks), recovery.go
// (RFC 6675 with PRR, RFC 6582, undo), rack.go (RACK-TLP), rate.go
// (delivery rate), rtt.go (RFC 6298), timer.go (every timer), info.go
// (TCP_INFO).

// State is a connection state (RFC 9293 §3.3.2).
type State uint8

const (
	StateClosed State = iota
	StateListen
	StateSynSent
	StateSynReceived
	StateEstablished
	StateFinWait1
	StateFinWait2
	StateCloseWait
	StateClosing
	StateLastAck
	StateTimeWait
)

var stateNames = [...]string{"CLOSED", "LISTEN", "SYN-SENT", "SYN-RECEIVED", "ESTABLISHED",
	"FIN-WAIT-1", "FIN-WAIT-2", "CLOSE-WAIT", "CLOSING", "LAST-ACK", "TIME-WAIT"}

var ssNames = [...]string{"UNCONN", "LISTEN", "SYN-SENT", "SYN-RECV", "ESTAB",
	"FIN-WAIT-1", "FIN-WAIT-2", "CLOSE-WAIT", "CLOSING", "LAST-ACK", "TIME-WAIT"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "STATE(" + string(rune('0'+s)) + ")"
}

// ssName is the state as ss(8) prints it.
func (s State) ssName() string {
	if int(s) < len(ssNames) {
		return ssNames[s]
	}
	return s.String()
}

// synchronized reports whether the state is one where both ISNs are
// known (RFC 9293 §3.5.2).
func (s State) synchronized() bool { return s >= StateSynReceived }

// Conn is one TCP connection. Its methods are safe for concurrent use and
// never block: Read and Write return ErrWouldBlock, and the socket layer
// waits on Readable, Writable and Done.
type Conn struct {
	p   *Protocol
	tid connID

	mu sync.Mutex // guards everything below

	// The channels the socket layer waits on, made on first use: an idle
	// connection nobody waits on holds none.
	readable, writable waker
	done               chan struct{} // nil until Done or closeDone needs it

	route proto.Route
	opts  Options

	// Fields are grouped by use, and small ones placed where they leave
	// no padding: an idle connection is this struct and little more.

	// User-side state.
	hardErr    error // why the connection ended (Read, Write)
	softErr    error // an ICMP error not fatal yet (SO_ERROR)
	st         State
	ipHdr      uint8 // IP header length: 20 or 40
	closed     bool  // Close or Abort called: the connection is an orphan
	connected  bool  // reached ESTABLISHED once
	sndShut    bool  // FIN queued (CloseWrite or Close)
	rcvFin     bool  // the peer's FIN is in the stream (EOF after the queue)
	errTaken   bool  // hardErr was returned by Err once
	doneClosed bool
	removed    bool // the connection is over: p.remove is due
	doneRemove bool // p.remove called
	finQueued  bool // sndShut and finSeq valid
	flushing   bool // unlock is writing outq

	// Send sequence space (RFC 9293 §3.3.1). sndNxt is the highest
	// sequence number sent plus one; retransmissions do not move it.
	iss, sndUna, sndNxt seqnum.Value
	sndWl1, sndWl2      seqnum.Value
	finSeq              seqnum.Value
	sndWS, rcvWS        uint8 // window shifts (RFC 7323 §2.3); 0 when not agreed
	wsOK                bool
	sndBufFixed         bool                        // SetSendBuffer called
	offer               struct{ ws, sack, ts bool } // what our SYN offered
	cwndLimited         bool                        // the last output stopped at cwnd
	irs                 seqnum.Value                // (receive sequence space)
	chalCount           int32                       // challenge ACKs sent since chalStart
	synRetries          int32                       // SYN or SYN-ACK retransmissions
	sndWnd              int                         // the peer's window, scaled
	maxSndWnd           int
	peerMSS             int // the peer's MSS option (536 without one)
	pmtu                int // path MTU: the route's, lowered by ICMP
	mssBase             int // largest segment payload without options
	smss                int // sender MSS: mssBase less the fixed options
	sendq               sendQueue
	sndBuf              int // send buffer limit (bytes queued)
	synSentAt           stamp
	txCount             uint64 // transmissions made (txSeg.txn)

	// Receive sequence space.
	rcvNxt      seqnum.Value
	rcvAdv      seqnum.Value // right edge of the window last advertised
	oooFinSeq   seqnum.Value
	lastAckSent seqnum.Value
	rcvBuf      int
	advMSS      int // the MSS we announced
	rcvMSS      int // estimate of the peer's segment size (delayed ACKs)
	recvq       recvQueue
	drs         drsState
	rcvBufFixed bool
	oooFin      bool // a FIN is held beyond a hole, at oooFinSeq

	// Options (RFC 7323, RFC 2018).
	tsOK   bool
	sackOK bool

	// ACK generation (RFC 9293 §3.8.6.3, RFC 5681 §4.2).
	ackNow   bool // send an ACK at the end of this input: something out of the ordinary
	ackData  bool // send an ACK for in-order data (every second segment, quick-ACK mode); may wait for the batch's end
	inBatch  bool // input done in a received batch, its ACK decision deferred to the batch's end
	hasDSACK bool
	// idleAppLimited is what rate.appLimited holds until the flight
	// state is made (see flight).
	idleAppLimited bool
	tsRecent       uint32
	tsOffset       uint32
	dsack          seqRange
	tsRecentAt     stamp
	ackPending     int   // bytes received and not yet acknowledged
	quickAcks      int   // ACKs to send at once (quick-ACK mode)
	chalStart      stamp // challenge-ACK rate limit window (RFC 5961 §7)

	// Round-trip time (rtt.go), congestion control, recovery.
	rtt   rttState
	cc    cc.Controller
	ccs   cc.State
	tim   timers
	stats connInfoStats

	// The sender's state for data in flight (scoreboard, recovery, RACK,
	// rate sampling, pacing, undo), made when the connection first sends
	// data: see flight.
	*flight

	// Keep-alive, persist, liveness.
	lastRecv     stamp // any segment received
	lastDataRecv stamp
	lastDataSent stamp
	lastAckRecv  stamp
	keepProbes   int
	probes       int // zero-window probes unanswered (any ACK answers)
	persistShift int // persist interval doublings (until the window opens)
	stallStart   stamp

	// nowCache is the time of the operation in progress (input, a timer,
	// Write), set at its start so that the engine reads the clock once
	// per operation rather than several times per segment; zero
	// outside one. See now.
	nowCache stamp

	// Output waiting for unlock.
	outq     []*buf.Packet
	spare    []*buf.Packet
	reuseSYN *segment // a SYN reusing this TIME-WAIT connection (RFC 6191)
}

// flight is the part of a connection's state that only a sender of data
// uses. An idle connection that has sent nothing holds none of it (600
// bytes less per connection); ensureFlight makes it, zero, when the
// connection first sends data, and it stays for the connection's life so
// that busy and idle periods cost no allocation. Its fields are reached
// through the embedding (c.sb, c.rack, ...): code that may run before
// the connection sent data (pure ACKs, output with nothing to send,
// Info, the end of the connection) checks c.flight for nil first, and
// does what the code would do on the zero state.
type flight struct {
	sb    scoreboard
	rec   recoveryState
	rack  rackState
	rate  rateState
	pace  paceState
	undo  undoState
	ccAck cc.Ack // the argument of cc.OnAck, kept here so it does not escape
}

// ensureFlight makes the connection's flight state on first use. Called
// with mu held.
func (c *Conn) ensureFlight() {
	if c.flight == nil {
		c.flight = new(flight)
		if c.idleAppLimited {
			c.rate.appLimited = 1
		}
	}
}

// allocConn makes a connection with its channels and options.
func allocConn(p *Protocol, id connID, r proto.Route, o Options) *Conn {
	c := &Conn{
		p:        p,
		tid:      id,
		route:    r,
		opts:     o,
		ipHdr:    wire.IPv4MinHeaderLen,
		tsOffset: p.tsOffset(id),
	}
	if id.local.Addr().Is6() && !id.local.Addr().Is4In6() {
		c.ipHdr = 40
	}
	c.pmtu = r.MTU
	if c.pmtu <= 0 {
		c.pmtu = 1500
	}
	c.advMSS = c.routeMSS()
	c.sndBuf = int(p.tun.WmemDefault.Load())
	if o.SendBuffer > 0 {
		c.sndBuf, c.sndBufFixed = o.SendBuffer, true
	}
	c.rcvBuf = int(p.tun.RmemDefault.Load())
	if o.RecvBuffer > 0 {
		c.rcvBuf, c.rcvBufFixed = o.RecvBuffer, true
	}
	c.rtt.init(p)
	now := p.clk.Now()
	c.lastRecv, c.lastAckRecv = c.stampOf(now), c.stampOf(now)
	return c
}

// stamp is a point in time as the time since the protocol's epoch plus
// one nanosecond: 8 bytes where a time.Time takes 24, for the times a
// connection keeps. The zero stamp is the zero time.
type stamp int64

// stampOf is t as a stamp; t is the zero time or not before the epoch.
func (c *Conn) stampOf(t time.Time) stamp {
	if t.IsZero() {
		return 0
	}
	return stamp(t.Sub(c.p.epoch)) + 1
}

// IsZero reports whether s is the zero stamp (no time).
func (s stamp) IsZero() bool { return s == 0 }

// timeOf is the time of s: the zero time for the zero stamp. Durations
// between times so converted are exact.
func (c *Conn) timeOf(s stamp) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return c.p.epoch.Add(time.Duration(s - 1))
}

// now is the current time for the engine: the time of the operation in
// progress when one set it (segment arrival, timer expiry, Write), else
// the clock's. Called with mu held.
func (c *Conn) now() time.Time {
	if c.nowCache != 0 {
		return c.timeOf(c.nowCache)
	}
	return c.p.clk.Now()
}

// routeMSS is the largest MSS the path allows (RFC 6691: the MTU less the
// fixed IP and TCP headers), clamped by Options.MSS.
func (c *Conn) routeMSS() int {
	m := c.pmtu - int(c.ipHdr) - wire.TCPMinHeaderLen
	if c.opts.MSS > 0 && c.opts.MSS < m {
		m = c.opts.MSS
	}
	return max(m, minMSS)
}

// minMSS is the least MSS used (RFC 9293 §3.7.1 has 536 as the default;
// Linux floors at 88 bytes for hostile MSS options).
const minMSS = 88

// wscaleFor is our window shift: the least that lets a 16-bit window field
// describe rmax bytes (RFC 7323 §2.3, at most 14).
func wscaleFor(rmax int) uint8 {
	s := uint8(0)
	for s < wire.TCPMaxWScale && (65535<<s) < rmax {
		s++
	}
	return s
}

// initCC makes the congestion controller. Called with mu held or before
// the connection is shared.
func (c *Conn) initCC(name string) error {
	if name == "" {
		name = c.p.tun.ccName()
	}
	ctl, err := c.p.cc.New(name)
	if err != nil {
		return err
	}
	c.cc = ctl
	return nil
}

// setMSS computes the sender MSS from the peer's MSS option and the path
// (RFC 6691 §3: the payload is the MSS less the options in every segment).
func (c *Conn) setMSS() {
	m := min(c.peerMSS, c.routeMSS())
	c.mssBase = max(m, minMSS)
	c.smss = c.mssBase
	if c.tsOK {
		c.smss -= 12 // NOP, NOP, timestamps
	}
	c.ccs.MSS = c.smss
}

// newConn makes a connection for an active open (Dial); the protocol has
// bound id and computed iss (isn.go). It sends the SYN and arms its
// retransmission.
func newConn(p *Protocol, id connID, iss seqnum.Value, o Options) (*Conn, error) {
	r, err := p.net.Route(id.remote.Addr(), id.local.Addr(), 0)
	if err != nil {
		if errors.Is(err, proto.ErrNoRoute) {
			err = syscall.ENETUNREACH
		}
		return nil, err
	}
	c := allocConn(p, id, r, o)
	if err := c.initCC(o.CongestionControl); err != nil {
		return nil, err
	}
	c.iss, c.sndUna, c.sndNxt = iss, iss, iss
	c.sendq.init(iss + 1)
	c.st = StateSynSent
	if p.tun.WindowScaling.Load() {
		// Room for auto-tuning up to rmem_max, or the buffer set.
		space := int(p.tun.RmemMax.Load())
		if c.rcvBufFixed {
			space = c.rcvBuf
		}
		c.rcvWS = wscaleFor(space)
	}
	c.peerMSS = 536
	c.mu.Lock()
	c.sendSYN()
	c.arm(tRexmt, c.rtt.current(c))
	c.unlock()
	p.stats.ActiveOpens.Inc()
	return c, nil
}

// newEstablished makes a connection from a completed handshake (SYN queue
// or cookie); it starts in ESTABLISHED.
func newEstablished(p *Protocol, h *handshake) *Conn {
	r, err := p.net.Route(h.id.remote.Addr(), h.id.local.Addr(), 0)
	if err != nil {
		r = proto.Route{Src: h.id.local.Addr(), Dst: h.id.remote.Addr(), NextHop: h.id.remote.Addr(), MTU: 1500}
	}
	c := allocConn(p, h.id, r, h.opts)
	if c.initCC(h.opts.CongestionControl) != nil {
		_ = c.initCC("")
		if c.cc == nil {
			_ = c.initCC("reno")
		}
	}
	now := p.clk.Now()
	c.iss, c.irs = h.iss, h.irs
	c.sndUna, c.sndNxt = h.iss+1, h.iss+1
	c.sendq.init(h.iss + 1)
	c.rcvNxt = h.irs + 1
	// The SYN-ACK advertised at most 65535 unscaled (RFC 7323 §2.2):
	// accept anything up to that until our first window goes out.
	c.rcvAdv = c.rcvNxt + 65535
	c.lastAckSent = c.rcvNxt
	if h.sndWScale >= 0 && h.rcvWScale >= 0 {
		c.wsOK = true
		c.sndWS, c.rcvWS = uint8(min(h.sndWScale, wire.TCPMaxWScale)), uint8(h.rcvWScale)
	}
	c.sndWnd = h.sndWnd
	c.maxSndWnd = h.sndWnd
	c.sndWl1, c.sndWl2 = h.irs+1, h.iss+1
	c.sackOK = h.sackOK
	c.tsOK = h.tsOK
	c.tsRecent, c.tsRecentAt, c.tsOffset = h.tsRecent, c.stampOf(now), h.tsOffset
	c.peerMSS = h.mss
	if c.peerMSS <= 0 {
		c.peerMSS = 536
	}
	c.setMSS()
	c.rcvMSS = min(c.advMSS, c.smss)
	c.cc.Init(&c.ccs, now)
	if h.rtt > 0 {
		c.rtt.sample(c, h.rtt)
	}
	c.mu.Lock()
	c.establish(now)
	c.mu.Unlock()
	return c
}

// establish enters ESTABLISHED: arms keep-alive, enters quick-ACK mode
// and wakes a dialer.
func (c *Conn) establish(now time.Time) {
	c.st = StateEstablished
	c.connected = true
	c.quickAcks = quickAckSegments
	c.stallStart = c.stampOf(now)
	c.rtt.backoff = 0
	c.dropTimer(tRexmt) // the SYN's: data sent later makes one again
	c.armKeepalive()
	c.writable.signal()
	if c.sndShut {
		c.queueFIN()
	}
}

// dropTimer releases timer k's clock timer when k is not armed, such as
// the retransmission timer of a handshake that completed: an idle
// connection would otherwise keep it (about 200 bytes) until it next
// sends data, when arm makes one again. A run of its callback already
// under way finds no deadline, or re-arms the new timer (fire).
func (c *Conn) dropTimer(k timerKind) {
	if c.tim.t[k] == nil || !c.tim.when[k].IsZero() {
		return
	}
	c.tim.t[k].Stop()
	c.tim.t[k] = nil
	c.tim.set[k] = 0
}

// quickAckSegments is how many segments are acknowledged at once after
// the handshake and after a hole, before delayed ACKs resume.
const quickAckSegments = 16

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// waker is a channel with a buffer of one, made when a waiter first asks
// for it. A signal before then is remembered and put in the channel when
// it is made, so it behaves as a channel made up front would. Guarded by
// the connection's mu.
type waker struct {
	// ch is nil (no channel, no signal), signalledChan (no channel, a
	// signal pending) or the channel.
	ch chan struct{}
}

// signalledChan marks a waker signalled before its channel was made. No
// one sends on it or receives from it.
var signalledChan = make(chan struct{})

func (w *waker) signal() {
	switch w.ch {
	case nil:
		w.ch = signalledChan
	case signalledChan:
	default:
		signal(w.ch)
	}
}

// get returns the channel, making it on first use.
func (w *waker) get() chan struct{} {
	if w.ch == nil || w.ch == signalledChan {
		pending := w.ch == signalledChan
		w.ch = make(chan struct{}, 1)
		if pending {
			w.ch <- struct{}{}
		}
	}
	return w.ch
}

// release drops the channel, remembering a signal it holds.
func (w *waker) release() {
	if w.ch == nil || w.ch == signalledChan {
		return
	}
	select {
	case <-w.ch:
		w.ch = signalledChan
	default:
		w.ch = nil
	}
}

// closedChan is a closed channel: Done after the connection ended, when
// nobody asked for Done before.
var closedChan = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

// unlock releases mu, then writes the segments queued while it was held
// and does the deferred calls into the protocol. A connection that is
// already flushing (another goroutine in this loop) leaves its segments to
// that goroutine, so segments leave in the order they were made.
func (c *Conn) unlock() {
	if c.flushing || (len(c.outq) == 0 && !c.pendingProtocolWork()) {
		c.mu.Unlock()
		return
	}
	c.flushing = true
	for len(c.outq) > 0 || c.pendingProtocolWork() {
		q := c.outq
		c.outq = c.spare[:0]
		c.spare = nil
		remove := c.removed && !c.doneRemove
		if remove {
			c.doneRemove = true
		}
		reuse := c.reuseSYN
		c.reuseSYN = nil
		r := c.route
		c.mu.Unlock()
		for i, pkt := range q {
			if err := c.p.net.WritePacket(r, wire.IPProtoTCP, proto.WriteParams{DF: true}, pkt); err != nil {
				c.p.log.Debug("tcp: write", "conn", c.tid.String(), "err", err)
			}
			q[i] = nil
		}
		if remove {
			c.p.remove(c)
		}
		if reuse != nil {
			c.p.reuseTimeWait(c, reuse)
		}
		c.mu.Lock()
		if c.spare == nil {
			c.spare = q[:0]
		}
	}
	c.flushing = false
	c.mu.Unlock()
}

func (c *Conn) pendingProtocolWork() bool {
	return (c.removed && !c.doneRemove) || c.reuseSYN != nil
}

// String is the connection's 4-tuple.
func (id connID) String() string { return id.local.String() + "->" + id.remote.String() }

// toClosed ends the connection: CLOSED, timers stopped, the send side
// released, the error recorded for Read and Write, waiters woken, and the
// connection unhashed once mu is released.
func (c *Conn) toClosed(err error) {
	if c.st == StateClosed && c.removed {
		return
	}
	c.st = StateClosed
	c.tim.stopAll()
	c.sendq.release()
	if c.flight != nil {
		c.sb.reset()
	}
	if c.closed {
		c.recvq.release()
	}
	if err != nil && c.hardErr == nil {
		c.hardErr = err
	}
	c.closeDone()
	c.readable.signal()
	c.writable.signal()
	c.removed = true
}

// closeDone closes the Done channel once.
func (c *Conn) closeDone() {
	if !c.doneClosed {
		c.doneClosed = true
		if c.done != nil {
			close(c.done)
		}
	}
}
