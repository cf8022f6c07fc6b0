package cc

import "time"

// NewReno returns the standard TCP congestion control of RFC 5681 §3.1 (the
// window part of "NewReno"; the core does the RFC 6582/6675 recovery):
//
//   - slow start: cwnd += min(N, L) per ACK of N new bytes, with appropriate
//     byte counting and L = 2·SMSS (RFC 3465 §2.2), L = 1·SMSS in the slow
//     start that follows a retransmission timeout (RFC 3465 §2.3);
//   - congestion avoidance: cwnd += SMSS for every cwnd bytes acknowledged
//     (RFC 5681 §3.1, the byte-counting form of SMSS·SMSS/cwnd; RFC 3465
//     §2.1);
//   - loss or ECE: ssthresh = max(FlightSize/2, 2·SMSS) (eqn. 4; RFC 3168
//     §6.1.2 for ECE); cwnd is left to the core's PRR (RFC 6937) during
//     recovery and set to ssthresh when recovery ends;
//   - timeout: the same ssthresh, held constant on a repeated timeout with
//     no ACK progress in between, and cwnd = 1·SMSS (the loss window);
//   - undo: the window and threshold saved at the last congestion event come
//     back (RFC 4015 §3; RFC 3708 with D-SACK);
//   - no growth while in recovery or while the application, not the window,
//     limits sending (RFC 7661 §4.3 in spirit).
//
// It never sets a pacing rate.
func NewReno() Controller { return &reno{} }

type reno struct {
	// caAcked counts bytes acknowledged in congestion avoidance toward the
	// next SMSS of growth (RFC 3465 §2.1).
	caAcked int
	// afterRTO: this slow start follows a timeout, so L = 1·SMSS.
	afterRTO bool
	// backoff: a timeout happened and no ACK has made progress since; a
	// further timeout is a repeated one (RFC 5681 §3.1: hold ssthresh).
	backoff bool
	// recovering: a loss or ECE response is in force and OnRecoveryEnd
	// should settle cwnd at ssthresh.
	recovering bool
	prior      priorWindow
}

func (r *reno) Name() string { return "reno" }

// Init sets the initial window (RFC 6928 via InitialWindow) and, unless the
// core already chose one, an "infinite" ssthresh (RFC 5681 §3.1).
func (r *reno) Init(s *State, now time.Time) {
	*r = reno{}
	s.CWnd = InitialWindow(s.MSS)
	if s.SSThresh <= 0 {
		s.SSThresh = MaxSSThresh
	}
	s.PacingRate = 0
}

func (r *reno) OnAck(s *State, a *Ack) {
	if a.Acked <= 0 {
		return
	}
	r.backoff = false
	if a.InRecovery || a.AppLimited {
		return
	}
	mss := mssOf(s)
	acked := a.Acked
	if s.CWnd < s.SSThresh {
		limit := 2 * mss
		if r.afterRTO {
			limit = mss
		}
		if acked = slowStart(s, acked, limit); acked == 0 {
			return
		}
	}
	r.afterRTO = false
	// RFC 5681 §3.1 / RFC 3465 §2.1: one SMSS per cwnd bytes acknowledged.
	r.caAcked += acked
	if w := max(s.CWnd, 1); r.caAcked >= w {
		n := r.caAcked / w
		r.caAcked -= n * w
		s.CWnd = min(s.CWnd+n*mss, maxCWnd)
	}
}

func (r *reno) OnCongestion(s *State, now time.Time, e Event) {
	repeated := e == Timeout && r.backoff
	if !repeated {
		r.prior = priorWindow{cwnd: s.CWnd, ssthresh: s.SSThresh, ok: true}
		s.SSThresh = lossThreshold(s)
	}
	r.caAcked = 0
	switch e {
	case Timeout:
		// RFC 5681 §3.1: after the timer fires cwnd is the loss window.
		s.CWnd = mssOf(s)
		r.afterRTO = true
		r.backoff = true
		r.recovering = false
	default:
		r.afterRTO = false
		r.recovering = true
	}
}

// OnRecoveryEnd deflates the window to ssthresh (RFC 6582 §3.2 step 3;
// RFC 6937 at the end of recovery).
func (r *reno) OnRecoveryEnd(s *State, now time.Time) {
	if !r.recovering {
		return
	}
	r.recovering = false
	if s.SSThresh < MaxSSThresh {
		s.CWnd = max(s.SSThresh, mssOf(s))
	}
	r.caAcked = 0
}

// Undo restores what the last congestion response changed (RFC 4015 §3):
// never to less than the window has now, in case it grew since.
func (r *reno) Undo(s *State, now time.Time) {
	if !r.prior.ok {
		return
	}
	s.CWnd = max(s.CWnd, r.prior.cwnd)
	s.SSThresh = max(s.SSThresh, r.prior.ssthresh)
	r.prior = priorWindow{}
	r.recovering = false
	r.afterRTO = false
	r.backoff = false
	r.caAcked = 0
}

func (r *reno) OnSent(s *State, now time.Time, bytes int) {}
