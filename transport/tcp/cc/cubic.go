package cc

import (
	"math"
	"time"
)

// RFC 9438 §4.1.1 constants.
const (
	cubicC     = 0.4 // segments per second³
	cubicBeta  = 0.7 // β_cubic, the multiplicative decrease
	alphaCubic = 3 * (1 - cubicBeta) / (1 + cubicBeta)
)

// NewCubic returns CUBIC (RFC 9438) with HyStart++ (RFC 9406) in its
// initial slow start:
//
//   - congestion avoidance follows W_cubic(t) = C·(t−K)³ + W_max (§4.2),
//     concave below W_max and convex above it, growing cwnd by
//     (target−cwnd)/cwnd·SMSS per SMSS acknowledged toward target =
//     W_cubic(t+SRTT) clamped to [cwnd, 1.5·cwnd] (§4.4, §4.5), unless the
//     Reno estimate W_est is ahead (the Reno-friendly region, §4.3);
//   - loss or ECE: W_max with fast convergence (§4.7), ssthresh =
//     max(cwnd·β_cubic, 2·SMSS) (§4.6); cwnd is left to the core's PRR
//     during recovery and set to ssthresh when recovery ends;
//   - timeout: the same ssthresh, cwnd = 1·SMSS, and the next congestion
//     avoidance stage starts a curve with K = 0 (§4.8);
//   - a spurious congestion event is undone with cwnd, ssthresh, W_max, K,
//     the epoch and W_est as they were (§4.9);
//   - no growth in recovery or while application-limited, and the time the
//     window stood unused is left out of t (§5.8, RFC 7661 in spirit).
//
// Times are the ACKs' Now; the RTT is State.SRTT (State.MinRTT before the
// first smoothed sample). It never sets a pacing rate.
func NewCubic() Controller { return &cubic{fastConvergence: true} }

type cubic struct {
	// The state, made when the controller first has work (data sent or
	// acknowledged, a congestion signal), so that a connection that never
	// sends holds 32 bytes of CUBIC rather than 500. Once made it stays.
	*cubicState
	// fastConvergence enables §4.7 (on by default: the SHOULD for shared
	// paths).
	fastConvergence bool
	// initCWnd is the window Init set, where HyStart++'s first round ends.
	initCWnd int
}

// cubicState is what CUBIC keeps between calls.
type cubicState struct {
	v cubicVars

	// What the last congestion response changed, for Undo (§4.9).
	priorW priorWindow
	priorV cubicVars

	// lastSend and lastAck find idle periods (§5.8).
	lastSend, lastAck time.Time
	// backoff: a timeout with no ACK progress since (RFC 5681 §3.1: a
	// repeated timeout holds ssthresh).
	backoff bool
	// recovering: a loss or ECE response is in force and OnRecoveryEnd
	// should settle cwnd at ssthresh.
	recovering bool
}

// cubicVars is the state §4.9 restores after a spurious congestion event
// (and what goes with it). Windows are in segments (float), times in
// seconds, as in the RFC's equations.
type cubicVars struct {
	wMax      float64 // W_max; 0 while undefined
	cwndPrior float64 // cwnd before the last reduction (§4.6)
	k         float64 // K, seconds

	epoch      bool      // a congestion avoidance stage is under way
	epochStart time.Time // t_epoch, shifted forward past unused time
	cwndEpoch  float64   // cwnd_epoch
	wEst       float64   // W_est (§4.3)
	alpha      float64   // α_cubic, or 1 once W_est ≥ cwnd_prior

	// noSaturation: the next stage starts with K = 0 and W_max = cwnd, as
	// after a timeout (§4.8) or a slow start that ended without loss
	// (§4.10).
	noSaturation bool
	// afterRTO: slow start after a timeout, L = 1·SMSS (RFC 3465 §2.3).
	afterRTO bool
	// frac holds growth below one byte until it adds up.
	frac float64
	// limitedSince is when the current run of application-limited ACKs
	// began (zero: none).
	limitedSince time.Time

	hs hystart
}

func (c *cubic) Name() string { return "cubic" }

// Init sets the initial window (RFC 6928 via InitialWindow) and, unless the
// core already chose one, an "infinite" ssthresh, and arms HyStart++.
func (c *cubic) Init(s *State, now time.Time) {
	s.CWnd = InitialWindow(s.MSS)
	if s.SSThresh <= 0 {
		s.SSThresh = MaxSSThresh
	}
	s.PacingRate = 0
	c.initCWnd = s.CWnd
	if c.cubicState != nil {
		c.reset()
	}
}

// state makes the state on first use, as Init would have left it.
func (c *cubic) state() {
	if c.cubicState == nil {
		c.cubicState = new(cubicState)
		c.reset()
	}
}

// reset puts the state as Init leaves it.
func (c *cubic) reset() {
	*c.cubicState = cubicState{}
	c.v.hs.reset(c.initCWnd)
}

func (c *cubic) OnAck(s *State, a *Ack) {
	if a.Acked <= 0 {
		return
	}
	c.state()
	c.backoff = false
	c.lastAck = a.Now
	if a.InRecovery {
		return
	}
	if a.AppLimited {
		// §5.8: t must not count the time the window went unused.
		if c.v.epoch && c.v.limitedSince.IsZero() {
			c.v.limitedSince = a.Now
		}
		return
	}
	if !c.v.limitedSince.IsZero() {
		c.shiftEpoch(a.Now.Sub(c.v.limitedSince))
		c.v.limitedSince = time.Time{}
	}
	acked := a.Acked
	if s.CWnd < s.SSThresh {
		if acked = c.slowStart(s, a); acked == 0 {
			return
		}
	}
	c.v.afterRTO = false
	c.avoid(s, a.Now, acked)
}

// slowStart grows the window in slow start (§4.10): HyStart++ in the
// initial one, RFC 5681/3465 slow start after that. It returns the bytes
// left for congestion avoidance once ssthresh is reached.
func (c *cubic) slowStart(s *State, a *Ack) int {
	h := &c.v.hs
	if !h.active(s) {
		limit := 2 * mssOf(s)
		if c.v.afterRTO {
			limit = mssOf(s)
		}
		return slowStart(s, a.Acked, limit)
	}
	if h.startAck(a) {
		// RFC 9406 §4.2: CSS is over, enter congestion avoidance with
		// this ACK. RFC 9438 §4.10: W_max is undefined, so cwnd_prior =
		// cwnd and the curve starts flat (K = 0) at this window.
		s.SSThresh = s.CWnd
		c.v.cwndPrior = segments(s, s.CWnd)
		c.v.noSaturation = true
		return a.Acked
	}
	s.CWnd = min(s.CWnd+h.increase(s, a.Acked), maxCWnd)
	h.endAck(a, s.CWnd)
	return 0
}

// avoid is congestion avoidance for acked bytes (§4.2–§4.5).
func (c *cubic) avoid(s *State, now time.Time, acked int) {
	mss := float64(mssOf(s))
	cwnd := segments(s, s.CWnd)
	if !c.v.epoch {
		c.startEpoch(cwnd, now)
	}
	t := now.Sub(c.v.epochStart).Seconds()
	segsAcked := float64(acked) / mss

	// §4.3: the Reno estimate, with α = 1 once it has reached cwnd_prior.
	c.v.wEst += c.v.alpha * segsAcked / cwnd
	if c.v.wEst >= c.v.cwndPrior {
		c.v.alpha = 1
	}
	if c.wCubic(t) < c.v.wEst {
		// Reno-friendly region: cwnd = W_est (never shrinking it).
		if w := toBytes(c.v.wEst, mss); w > s.CWnd {
			s.CWnd = w
		}
		return
	}
	// §4.2 target, §4.4/§4.5 concave and convex regions alike.
	target := min(max(c.wCubic(t+c.rtt(s)), cwnd), 1.5*cwnd)
	c.v.frac += (target - cwnd) / cwnd * segsAcked * mss
	if c.v.frac >= 1 {
		n := math.Floor(c.v.frac)
		c.v.frac -= n
		s.CWnd = min(s.CWnd+toBytes(n, 1), maxCWnd)
	}
}

// startEpoch begins a congestion avoidance stage at cwnd segments (§4.2,
// Figure 2: K = ∛((W_max − cwnd_epoch)/C), which is ∛(W_max·(1−β)/C) after
// a plain reduction; §4.8 and §4.10 for K = 0).
func (c *cubic) startEpoch(cwnd float64, now time.Time) {
	v := &c.v
	v.epoch = true
	v.epochStart = now
	v.cwndEpoch = cwnd
	v.limitedSince = time.Time{}
	v.frac = 0
	if v.noSaturation || v.wMax <= 0 {
		v.wMax = cwnd
		v.k = 0
		if v.cwndPrior <= 0 {
			v.cwndPrior = cwnd
		}
		v.noSaturation = false
	} else {
		v.k = math.Cbrt((v.wMax - cwnd) / cubicC)
	}
	v.wEst = cwnd
	v.alpha = alphaCubic
	if v.wEst >= v.cwndPrior {
		v.alpha = 1
	}
}

// wCubic is Figure 1 in segments, t in seconds.
func (c *cubic) wCubic(t float64) float64 {
	d := t - c.v.k
	return cubicC*d*d*d + c.v.wMax
}

// rtt is the RTT of the target (§4.2: the smoothed RTT), in seconds.
func (c *cubic) rtt(s *State) float64 {
	if s.SRTT > 0 {
		return s.SRTT.Seconds()
	}
	return max(s.MinRTT, 0).Seconds()
}

func (c *cubic) shiftEpoch(d time.Duration) {
	if c.v.epoch && d > 0 {
		c.v.epochStart = c.v.epochStart.Add(d)
	}
}

func (c *cubic) OnCongestion(s *State, now time.Time, e Event) {
	c.state()
	repeated := e == Timeout && c.backoff
	mss := mssOf(s)
	cwnd := segments(s, s.CWnd)
	if !repeated {
		c.priorW = priorWindow{cwnd: s.CWnd, ssthresh: s.SSThresh, ok: true}
		c.priorV = c.v
		// §4.6 with cwnd rather than flight_size: allowed because the
		// window never grows while application-limited (OnAck).
		s.SSThresh = max(int(float64(s.CWnd)*cubicBeta), 2*mss)
		c.v.cwndPrior = cwnd
	}
	switch e {
	case Timeout:
		// §4.8: reduce as Reno does (RFC 5681: the loss window); W_max
		// and K are set when congestion avoidance begins again.
		s.CWnd = mss
		c.v.noSaturation = true
		c.v.afterRTO = true
		c.backoff = true
		c.recovering = false
	default:
		// §4.7: fast convergence, on W_max before the reduction.
		if c.fastConvergence && cwnd < c.v.wMax {
			c.v.wMax = cwnd * (1 + cubicBeta) / 2
		} else {
			c.v.wMax = cwnd
		}
		c.v.noSaturation = false
		c.v.afterRTO = false
		c.recovering = true
	}
	// The next ACK outside recovery starts a new stage; a loss ends
	// HyStart++ (RFC 9406 §4.2).
	c.v.epoch = false
	c.v.limitedSince = time.Time{}
	c.v.frac = 0
	c.v.hs.phase = hsDone
}

// OnRecoveryEnd settles the window at ssthresh (§4.6; the core's PRR has
// been moving it there).
func (c *cubic) OnRecoveryEnd(s *State, now time.Time) {
	c.state()
	if !c.recovering {
		return
	}
	c.recovering = false
	if s.SSThresh < MaxSSThresh {
		s.CWnd = max(s.SSThresh, mssOf(s))
	}
}

// Undo restores cwnd, ssthresh, W_max, K, the epoch and W_est as they were
// before the last congestion response, if the window is still below what it
// was (§4.9); otherwise the current values stand.
func (c *cubic) Undo(s *State, now time.Time) {
	c.state()
	if !c.priorW.ok {
		return
	}
	if s.CWnd < c.priorW.cwnd {
		s.CWnd = c.priorW.cwnd
		s.SSThresh = c.priorW.ssthresh
		c.v = c.priorV
		c.v.limitedSince = time.Time{}
	}
	c.priorW = priorWindow{}
	c.recovering = false
	c.backoff = false
}

// OnSent leaves out of the curve's time the idle period that ends with this
// send (§5.8).
func (c *cubic) OnSent(s *State, now time.Time, bytes int) {
	c.state()
	if c.v.limitedSince.IsZero() {
		c.shiftEpoch(idleShift(s.InFlight, bytes, now, c.lastSend, c.lastAck))
	}
	c.lastSend = now
}

// segments is n bytes in segments of s.MSS (at least a tiny positive value,
// so it can divide).
func segments(s *State, n int) float64 {
	return max(float64(n), 1) / float64(mssOf(s))
}

// toBytes converts segs segments of mss bytes to bytes, clamped to maxCWnd.
func toBytes(segs, mss float64) int {
	b := segs * mss
	if !(b < maxCWnd) { // also catches NaN
		return maxCWnd
	}
	return max(int(b), 0)
}
