package cc

import (
	"math"
	"testing"
	"time"
)

// The tests drive controllers with synthetic ACK streams on virtual time: a
// flow keeps a State and a clock reading that only the test moves, and a
// round delivers one window of ACKs evenly over one RTT, as an ACK clock
// with a window-limited sender does.

const testMSS = 1448

var t0 = time.Unix(1_700_000_000, 0)

type flow struct {
	t   *testing.T
	c   Controller
	s   State
	now time.Time
	// countRounds makes the flow number its rounds in Ack.Round, as a core
	// that counts rounds does; otherwise Ack.Round stays 0.
	countRounds bool
	round       uint64
}

func newFlow(t *testing.T, c Controller, srtt time.Duration) *flow {
	t.Helper()
	f := &flow{t: t, c: c, now: t0}
	f.s = State{MSS: testMSS, SRTT: srtt, MinRTT: srtt}
	c.Init(&f.s, f.now)
	return f
}

// roundOpts shapes the ACKs of one round.
type roundOpts struct {
	// rtt is both the round's length and each ACK's RTT sample.
	rtt time.Duration
	// ackEvery is the segments each ACK covers (default 1).
	ackEvery int
	// noSample sends ACKs without an RTT sample (Karn's rule).
	noSample   bool
	inRecovery bool
	appLimited bool
}

// run delivers the ACKs for one window, the window as it is when the round
// starts, spread evenly over opts.rtt. The sender is window-limited: the
// State's InFlight is the window at each ACK.
func (f *flow) run(o roundOpts) {
	f.t.Helper()
	every := max(o.ackEvery, 1)
	window := f.s.CWnd
	n := (window + every*testMSS - 1) / (every * testMSS)
	start := f.now
	if f.countRounds {
		f.round++
	}
	left := window
	for i := range n {
		acked := min(left, every*testMSS)
		left -= acked
		f.now = start.Add(o.rtt * time.Duration(i+1) / time.Duration(n))
		a := Ack{
			Now:        f.now,
			Acked:      acked,
			RTT:        o.rtt,
			InRecovery: o.inRecovery,
			AppLimited: o.appLimited,
			Round:      f.round,
		}
		if o.noSample {
			a.RTT = 0
		}
		f.s.InFlight = f.s.CWnd
		f.c.OnAck(&f.s, &a)
	}
}

// rounds runs n rounds alike.
func (f *flow) rounds(n int, o roundOpts) {
	f.t.Helper()
	for range n {
		f.run(o)
	}
}

// segs is the window in segments.
func (f *flow) segs() float64 { return float64(f.s.CWnd) / testMSS }

// setWindow puts the flow at cwnd and ssthresh, in segments.
func (f *flow) setWindow(cwnd, ssthresh int) {
	f.s.CWnd = cwnd * testMSS
	f.s.SSThresh = ssthresh * testMSS
	if ssthresh < 0 {
		f.s.SSThresh = MaxSSThresh
	}
}

// lossAt puts a window-limited flow through a loss and its recovery: the
// congestion response at the current window, then the end of recovery.
func (f *flow) lossAt(e Event) {
	f.s.InFlight = f.s.CWnd
	f.c.OnCongestion(&f.s, f.now, e)
	f.c.OnRecoveryEnd(&f.s, f.now)
}

func near(got, want, tol float64) bool { return math.Abs(got-want) <= tol }
