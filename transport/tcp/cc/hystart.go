package cc

import (
	"math"
	"time"
)

// HyStart++ (RFC 9406): leaving the initial slow start on a rise in delay,
// before the queue overflows. CUBIC runs it; see cubic.slowStart.
//
//	slow start --RTT rose by RttThresh--> CSS --CSS_ROUNDS rounds--> CA
//	    ^                                  |
//	    +------ RTT fell below baseline ---+        (loss: ends either)
//
// Rounds. RFC 9406 §4.2 ends a round when an ACK covers windowEnd, the
// SND.NXT of the round's start; the next ACK opens the new round and its
// RTT sample counts there. When the core counts rounds (Ack.Round non-zero)
// the controller follows it. Otherwise it estimates: a round ends once the
// bytes acknowledged since it began reach the congestion window after the
// ACK that ended the round before. In slow start the sender is
// window-limited (app-limited ACKs are not counted), so that window is the
// data outstanding when the round begins, which is what windowEnd marks;
// reordering, SACK holes and a window the sender does not fill make the
// estimate drift, which only shifts where rounds are cut.

// RFC 9406 §4.3 constants.
const (
	hsMinRTTThresh    = 4 * time.Millisecond
	hsMaxRTTThresh    = 16 * time.Millisecond
	hsMinRTTDivisor   = 8
	hsNRTTSample      = 8
	hsCSSGrowthDivide = 4
	hsCSSRounds       = 5
	// hsL is the slow-start increase limit in segments for a sender that
	// does not pace; a paced one has none.
	hsL = 8
)

// noRTT is RFC 9406's "infinity" for the round minima.
const noRTT = time.Duration(math.MaxInt64)

type hsPhase uint8

const (
	hsSlowStart hsPhase = iota // standard slow start, watching the delay
	hsCSS                      // Conservative Slow Start
	hsDone                     // HyStart++ is over for this connection
)

func (p hsPhase) String() string {
	switch p {
	case hsSlowStart:
		return "slow-start"
	case hsCSS:
		return "css"
	}
	return "done"
}

// hystart is the RFC 9406 §4.2 state.
type hystart struct {
	phase hsPhase
	// round is the last Ack.Round seen (core-counted rounds).
	round uint64
	// roundAcked, roundEnd and nextRoundEnd estimate rounds when the core
	// doesn't count them: the bytes acknowledged in this round, the bytes
	// that end it, and, once it has ended, those that will end the next.
	roundAcked, roundEnd, nextRoundEnd int

	lastRoundMinRTT    time.Duration
	currentRoundMinRTT time.Duration
	rttSampleCount     int
	cssBaselineMinRTT  time.Duration
	// cssRounds counts the rounds that ended in CSS, the one CSS began in
	// included.
	cssRounds int
}

// reset starts HyStart++ for a connection whose first flight is cwnd bytes.
func (h *hystart) reset(cwnd int) {
	*h = hystart{
		phase:              hsSlowStart,
		roundEnd:           cwnd,
		lastRoundMinRTT:    noRTT,
		currentRoundMinRTT: noRTT,
		cssBaselineMinRTT:  noRTT,
	}
}

// active reports whether HyStart++ governs this slow start: only the
// initial one, while ssthresh is still unset (RFC 9406 §4.2: later slow
// starts have an ssthresh to stop at).
func (h *hystart) active(s *State) bool {
	return h.phase != hsDone && s.SSThresh >= MaxSSThresh
}

// increase is the most one ACK may grow the window by, in bytes (§4.2: the
// standard min(N, L·SMSS), divided by CSS_GROWTH_DIVISOR in CSS).
func (h *hystart) increase(s *State, acked int) int {
	inc := acked
	if s.PacingRate == 0 {
		inc = min(acked, hsL*mssOf(s))
	}
	if h.phase == hsCSS {
		inc /= hsCSSGrowthDivide
	}
	return inc
}

// startAck begins §4.2 for one ACK: if the ACK opens a new round, the
// round minima roll over. It reports whether slow start is over (CSS_ROUNDS
// rounds of CSS are done); the caller then enters congestion avoidance with
// this ACK.
func (h *hystart) startAck(a *Ack) (toCA bool) {
	opens := false
	if a.Round != 0 {
		if a.Round != h.round {
			opens = h.round != 0
			h.round = a.Round
		}
	} else if h.roundAcked >= h.roundEnd {
		opens = true
		h.roundAcked = 0
		h.roundEnd = h.nextRoundEnd
	}
	return opens && h.newRound()
}

// endAck finishes §4.2 for one ACK of a.Acked bytes after the window grew
// to cwnd: it takes the RTT sample, moves between slow start and CSS, and
// estimates where the round ends.
func (h *hystart) endAck(a *Ack, cwnd int) {
	if a.RTT > 0 {
		h.currentRoundMinRTT = min(h.currentRoundMinRTT, a.RTT)
		h.rttSampleCount++
	}
	if h.rttSampleCount >= hsNRTTSample && h.currentRoundMinRTT != noRTT {
		switch h.phase {
		case hsSlowStart:
			if h.lastRoundMinRTT != noRTT {
				thresh := max(hsMinRTTThresh, min(h.lastRoundMinRTT/hsMinRTTDivisor, hsMaxRTTThresh))
				if h.currentRoundMinRTT >= h.lastRoundMinRTT+thresh {
					h.cssBaselineMinRTT = h.currentRoundMinRTT
					h.phase = hsCSS
					h.cssRounds = 0
				}
			}
		case hsCSS:
			// The rise was spurious: back to slow start.
			if h.currentRoundMinRTT < h.cssBaselineMinRTT {
				h.cssBaselineMinRTT = noRTT
				h.phase = hsSlowStart
			}
		}
	}
	if a.Round == 0 && h.roundAcked < h.roundEnd {
		h.roundAcked += a.Acked
		if h.roundAcked >= h.roundEnd {
			// The round's data is all acknowledged (windowEnd); the
			// next ACK opens a round that ends after the window the
			// sender can now fill.
			h.nextRoundEnd = cwnd
		}
	}
}

// newRound rolls the per-round minima over (§4.2, "at the start of each
// round") and counts CSS rounds; true means CSS is complete.
func (h *hystart) newRound() bool {
	h.lastRoundMinRTT = h.currentRoundMinRTT
	h.currentRoundMinRTT = noRTT
	h.rttSampleCount = 0
	if h.phase == hsCSS {
		h.cssRounds++
		if h.cssRounds >= hsCSSRounds {
			h.phase = hsDone
			return true
		}
	}
	return false
}
