package tcp

import (
	"syscall"
	"time"

	"ustack/internal/clock"
	"ustack/internal/seqnum"
)

// Timers. Each is a clock.AfterFunc made on first use; the deadline kept
// beside it under the connection's mutex is the truth, so a callback that
// lost a race with a re-arm or a stop sees a deadline in the future (or
// none) and does nothing, or re-arms for the deadline. No goroutine of our
// own: callbacks run on the clock's.
//
// Re-arming is lazy, because the data path moves deadlines on nearly every
// segment (the retransmission timer on each ACK, the TLP timer on each
// send, the delayed ACK on and off): arm touches the clock's timer only
// when the new deadline is earlier than the one it is already set for,
// and disarm only forgets the deadline. A timer that goes off early finds
// a later deadline (or none) and re-arms (or does nothing): at most one
// early expiry per timeout instead of a Reset or Stop per segment.
//
//	tRexmt  retransmission (RFC 6298), SYN retransmission, or the persist
//	        timer (zero-window probes, RFC 9293 §3.8.6.1) when tim.persist
//	tDelack delayed ACK (RFC 9293 §3.8.6.3)
//	tTLP    tail loss probe (RFC 8985 §7)
//	tReo    RACK reordering timer (RFC 8985 §6.3)
//	tSlow   keep-alive (RFC 1122 §4.2.3.6), FIN-WAIT-2 timeout, TIME-WAIT
//	tPace   pacing release

type timerKind uint8

const (
	tRexmt timerKind = iota
	tDelack
	tTLP
	tReo
	tSlow
	tPace
	numTimers
)

type slowKind uint8

const (
	slowKeepalive slowKind = iota + 1
	slowFinWait2
	slowTimeWait
)

type timers struct {
	t    [numTimers]clock.Timer
	when [numTimers]stamp // the deadline; zero: not armed
	// set is when the clock's timer is due to go off, as time since the
	// protocol's epoch (0: it is not pending, as far as we know); 8
	// bytes rather than a time.Time's 24, per timer and connection. It
	// may be earlier than when, or pending with when zero: see the lazy
	// re-arming above.
	set     [numTimers]time.Duration
	persist bool // tRexmt is the persist timer
	slow    slowKind
}

// arm (re)starts timer k to fire after d.
func (c *Conn) arm(k timerKind, d time.Duration) {
	w := c.now().Add(d)
	c.tim.when[k] = c.stampOf(w)
	at := max(w.Sub(c.p.epoch), 1)
	if s := c.tim.set[k]; s != 0 && at >= s {
		return // goes off by then; fire re-arms for w
	}
	c.tim.set[k] = at
	if c.tim.t[k] == nil {
		c.tim.t[k] = c.p.clk.AfterFunc(d, func() { c.fire(k) })
		return
	}
	c.tim.t[k].Reset(d)
}

// disarm stops timer k. The clock's timer is left pending (lazy): when it
// goes off it finds no deadline.
func (c *Conn) disarm(k timerKind) {
	if c.tim.when[k].IsZero() {
		return
	}
	c.tim.when[k] = 0
	if k == tRexmt {
		c.tim.persist = false
	}
}

// stopAll stops every timer for good (the connection ends or enters
// TIME-WAIT).
func (t *timers) stopAll() {
	for k := range t.t {
		if t.t[k] != nil {
			t.t[k].Stop()
		}
		t.when[k] = 0
		t.set[k] = 0
	}
	t.persist = false
	t.slow = 0
}

// fire runs when timer k's clock callback comes.
func (c *Conn) fire(k timerKind) {
	c.mu.Lock()
	defer c.unlock()
	c.tim.set[k] = 0 // this expiry is the one that was pending
	w := c.timeOf(c.tim.when[k])
	if w.IsZero() {
		return
	}
	now := c.p.clk.Now()
	if now.Before(w) {
		// Re-armed later than this expiry (or by a lazy arm).
		c.tim.set[k] = max(w.Sub(c.p.epoch), 1)
		c.tim.t[k].Reset(w.Sub(now))
		return
	}
	c.tim.when[k] = 0
	c.nowCache = c.stampOf(now)
	defer func() { c.nowCache = 0 }()
	if k != tDelack && k != tSlow {
		c.ensureFlight() // these follow data sent
	}
	switch k {
	case tRexmt:
		if c.tim.persist {
			c.tim.persist = false
			c.onPersist(now)
		} else {
			c.onRexmt(now)
		}
	case tDelack:
		if c.ackPending > 0 && c.st.synchronized() && c.st != StateClosed {
			c.p.stats.DelayedACKs.Inc()
			c.sendAck()
		}
	case tTLP:
		c.onTLP(now)
	case tReo:
		c.onReoTimer(now)
	case tSlow:
		switch c.tim.slow {
		case slowKeepalive:
			c.onKeepalive(now)
		case slowFinWait2, slowTimeWait:
			c.toClosed(nil)
		}
	case tPace:
		c.output()
	}
}

// onRexmt: the retransmission timer expired.
func (c *Conn) onRexmt(now time.Time) {
	switch c.st {
	case StateSynSent, StateSynReceived:
		if int(c.synRetries) >= int(c.p.tun.SynRetries.Load()) || c.userTimedOut(now) {
			c.p.stats.AttemptFails.Inc()
			c.toClosed(c.timeoutErr())
			return
		}
		c.synRetries++
		c.p.stats.SynRetrans.Inc()
		c.rtt.backoff++
		c.sendSYN()
		c.arm(tRexmt, c.rtt.current(c))
		return
	}
	if !c.dataState() || c.sndUna == c.sndNxt {
		return
	}
	if c.userTimedOut(now) {
		c.p.stats.UserTimeoutDrops.Inc()
		c.sendRST(c.sndNxt)
		c.toClosed(syscall.ETIMEDOUT)
		return
	}
	if c.rtt.backoff >= int(c.p.tun.Retries2.Load()) {
		c.p.stats.RetransDrops.Inc()
		c.toClosed(c.timeoutErr())
		return
	}
	c.enterLoss(now)
	c.rtt.backoff++
	c.stats.retransmits = c.rtt.backoff
	c.arm(tRexmt, c.rtoClamped(now))
	if c.rec.frto != 0 && len(c.sb.segs) > 0 {
		c.retransmit(0, now, false) // F-RTO step 1: the first segment, whatever pipe says
	}
	c.output()
}

// rtoClamped is the backed-off RTO, cut so that it fires by the user
// timeout (RFC 5482).
func (c *Conn) rtoClamped(now time.Time) time.Duration {
	d := c.rtt.current(c)
	if ut := c.opts.UserTimeout; ut > 0 {
		left := c.timeOf(c.stallStart).Add(ut).Sub(now)
		d = max(min(d, left), time.Millisecond)
	}
	return d
}

// userTimedOut reports whether data has waited for an acknowledgment
// longer than the user timeout (RFC 5482, TCP_USER_TIMEOUT).
func (c *Conn) userTimedOut(now time.Time) bool {
	ut := c.opts.UserTimeout
	return ut > 0 && c.stallStart != 0 && now.Sub(c.timeOf(c.stallStart)) >= ut
}

// timeoutErr is the error of a connection dropped by its timers: the
// last ICMP error if one came (as Linux reports it), else ETIMEDOUT.
func (c *Conn) timeoutErr() error {
	if c.softErr != nil {
		err := c.softErr
		c.softErr = nil
		return err
	}
	return syscall.ETIMEDOUT
}

// armPersist starts the persist timer when the peer's window keeps data
// from going out and nothing is in flight (RFC 9293 §3.8.6.1).
func (c *Conn) armPersist() {
	if !c.tim.when[tRexmt].IsZero() {
		return
	}
	d := c.rtt.current(c)
	for i := 0; i < c.persistShift && d < dur(&c.p.tun.RTOMax); i++ {
		d *= 2
	}
	d = min(max(d, dur(&c.p.tun.RTOMin)), dur(&c.p.tun.RTOMax))
	c.arm(tRexmt, d)
	c.tim.persist = true
}

// onPersist: probe a zero window, or send what a small window takes
// (the SWS override, RFC 9293 §3.8.6.2.1).
func (c *Conn) onPersist(now time.Time) {
	if !c.dataState() || (c.unsent() == 0 && !c.finPending()) {
		return
	}
	if c.userTimedOut(now) || c.probes >= int(c.p.tun.Retries2.Load()) {
		c.p.stats.RetransDrops.Inc()
		c.sendRST(c.sndNxt)
		c.toClosed(syscall.ETIMEDOUT)
		return
	}
	wndRoom := int(int32(c.sndUna.Add(seqnum.Size(c.sndWnd)) - c.sndNxt))
	if wndRoom > 0 && c.sendNew(now, max(c.ccs.CWnd-c.pipe(), c.smss), true) {
		c.probes, c.persistShift = 0, 0
		return
	}
	c.p.stats.PersistProbes.Inc()
	c.stats.probes++
	c.probes++
	c.persistShift++
	c.sendProbe(now)
	c.armPersist()
}

// armKeepalive (re)starts the keep-alive timer when keep-alive is on and
// the connection is established, and stops it otherwise.
func (c *Conn) armKeepalive() {
	on := c.opts.KeepAlive && (c.st == StateEstablished || c.st == StateCloseWait)
	if !on {
		if c.tim.slow == slowKeepalive {
			c.disarm(tSlow)
			c.tim.slow = 0
		}
		return
	}
	if c.tim.slow != 0 && c.tim.slow != slowKeepalive {
		return
	}
	idle := c.keepIdle()
	left := idle - c.now().Sub(c.timeOf(c.lastRecv))
	c.tim.slow = slowKeepalive
	c.arm(tSlow, max(left, time.Millisecond))
}

func (c *Conn) keepIdle() time.Duration {
	if c.opts.KeepAliveIdle > 0 {
		return c.opts.KeepAliveIdle
	}
	return dur(&c.p.tun.KeepIdle)
}

func (c *Conn) keepIntvl() time.Duration {
	if c.opts.KeepAliveInterval > 0 {
		return c.opts.KeepAliveInterval
	}
	return dur(&c.p.tun.KeepIntvl)
}

func (c *Conn) keepCnt() int {
	if c.opts.KeepAliveCount > 0 {
		return c.opts.KeepAliveCount
	}
	return int(c.p.tun.KeepCnt.Load())
}

// onKeepalive sends a keep-alive probe after keepidle of silence and one
// every keepintvl after, and drops the connection after keepcnt
// unanswered ones (RFC 1122 §4.2.3.6).
func (c *Conn) onKeepalive(now time.Time) {
	c.tim.slow = 0
	if !c.opts.KeepAlive || (c.st != StateEstablished && c.st != StateCloseWait) {
		return
	}
	c.tim.slow = slowKeepalive
	if c.sndUna != c.sndNxt || c.unsent() > 0 {
		c.arm(tSlow, c.keepIdle()) // the retransmission timer watches
		return
	}
	idle := now.Sub(c.timeOf(c.lastRecv))
	if idle < c.keepIdle() {
		c.arm(tSlow, c.keepIdle()-idle)
		return
	}
	ut := c.opts.UserTimeout
	if (ut > 0 && idle >= ut && c.keepProbes > 0) || (ut == 0 && c.keepProbes >= c.keepCnt()) {
		c.p.stats.KeepaliveDrops.Inc()
		c.sendRST(c.sndNxt)
		c.toClosed(c.timeoutErr())
		return
	}
	c.p.stats.KeepaliveProbes.Inc()
	c.keepProbes++
	c.sendProbe(now)
	c.arm(tSlow, c.keepIntvl())
}

// armFinWait2 bounds how long a closed connection waits for the peer's
// FIN (net.inet.tcp.fin_timeout, as Linux's tcp_fin_timeout).
func (c *Conn) armFinWait2() {
	if !c.closed || c.st != StateFinWait2 {
		return
	}
	c.disarm(tSlow)
	c.tim.slow = slowFinWait2
	c.arm(tSlow, dur(&c.p.tun.FinTimeout))
}

// enterTimeWait moves to TIME-WAIT for 2·MSL (RFC 9293 §3.6.1): the
// 4-tuple stays hashed so old duplicates die here.
func (c *Conn) enterTimeWait() {
	c.st = StateTimeWait
	for k := range numTimers {
		if k != tDelack {
			c.disarm(k)
		}
	}
	c.sendq.release()
	if c.flight != nil {
		c.sb.reset()
	}
	c.tim.slow = slowTimeWait
	c.arm(tSlow, 2*dur(&c.p.tun.MSL))
	c.closeDone()
	c.readable.signal()
	c.writable.signal()
}
