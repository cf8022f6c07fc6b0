package tcp

import (
	"time"

	"ustack/transport/tcp/cc"
)

// Delivery-rate sampling (draft-cheng-iccrg-delivery-rate-estimation):
// every segment sent remembers how much had been delivered, and when,
// at that moment; when it is delivered, the bytes delivered since over
// the longer of the send and the ACK intervals is a rate sample. The
// samples feed cc.Ack.Rate (for BBR-like controllers) and Info.

// rateSnap is the connection's delivery state when a segment was sent.
type rateSnap struct {
	delivered     uint64
	deliveredTime time.Time
	firstTx       time.Time
	appLimited    bool
}

type rateState struct {
	delivered     uint64    // C.delivered: bytes delivered so far
	deliveredTime time.Time // C.delivered_time
	firstTx       time.Time // C.first_sent_time
	appLimited    uint64    // C.app_limited: 0, or the delivered mark ending the app-limited phase

	// The sample being built while one ACK is processed.
	has              bool
	priorDelivered   uint64
	priorTime        time.Time
	sendElapsed      time.Duration
	sampleAppLimited bool

	last     cc.RateSample
	lastRate uint64 // bytes per second, of the last sample not app-limited (or higher)
}

// rateOnSend snapshots the delivery state into a segment being sent
// (draft §3.2 "upon sending"). inFlight is what was in flight before it.
func (c *Conn) rateOnSend(s *txSeg, now time.Time, inFlight int) {
	r := &c.rate
	if inFlight == 0 {
		r.firstTx, r.deliveredTime = now, now
	}
	s.tx = rateSnap{delivered: r.delivered, deliveredTime: r.deliveredTime,
		firstTx: r.firstTx, appLimited: r.appLimited != 0}
}

// rateOnDelivered accounts one segment newly delivered, cumulatively or by
// SACK (draft §3.3 "upon receiving ACK", per packet).
func (c *Conn) rateOnDelivered(s *txSeg, now time.Time) {
	r := &c.rate
	r.delivered += uint64(s.len())
	r.deliveredTime = now
	if s.tx.deliveredTime.IsZero() {
		return
	}
	if !r.has || s.tx.delivered > r.priorDelivered {
		r.has = true
		r.priorDelivered = s.tx.delivered
		r.priorTime = s.tx.deliveredTime
		r.sampleAppLimited = s.tx.appLimited
		r.sendElapsed = s.xmit.Sub(s.tx.firstTx)
		r.firstTx = s.xmit
	}
}

// rateSample finishes the sample for this ACK (draft §3.3, "generate a
// rate sample"); the zero RateSample when there is none.
func (c *Conn) rateSample(priorInFlight int) cc.RateSample {
	r := &c.rate
	if r.appLimited != 0 && r.delivered > r.appLimited {
		r.appLimited = 0
	}
	if !r.has {
		return cc.RateSample{}
	}
	r.has = false
	ackElapsed := r.deliveredTime.Sub(r.priorTime)
	interval := max(r.sendElapsed, ackElapsed)
	if interval <= 0 || (c.rtt.minRTT > 0 && interval < c.rtt.minRTT) {
		return cc.RateSample{}
	}
	rs := cc.RateSample{
		Delivered:     r.delivered - r.priorDelivered,
		Interval:      interval,
		AppLimited:    r.sampleAppLimited,
		PriorInFlight: priorInFlight,
	}
	r.last = rs
	if rate := uint64(rs.Rate()); !rs.AppLimited || rate > r.lastRate {
		r.lastRate = rate
	}
	return rs
}

// rateCheckAppLimited marks the connection application-limited when it
// has nothing more to send and room to send it (draft §3.4).
func (c *Conn) rateCheckAppLimited() {
	if c.sendq.end() == c.sndNxt && !c.finPending() && c.pipe() < c.ccs.CWnd && c.sb.lostPending == 0 {
		c.rate.appLimited = max(c.rate.delivered+uint64(c.pipe()), 1)
	}
}
