package cc

import (
	"testing"
	"time"
)

// roundModes runs a HyStart++ test with rounds estimated from bytes and
// with rounds counted by the core (Ack.Round).
var roundModes = []struct {
	name  string
	count bool
}{{"estimated rounds", false}, {"core rounds", true}}

// hyFlow is a fresh CUBIC flow in its initial slow start that has run two
// rounds at base RTT (10 → 20 → 40 segments), so the last round's minimum
// RTT is known.
func hyFlow(t *testing.T, countRounds bool, base time.Duration) (*flow, *hystart) {
	t.Helper()
	f := newFlow(t, NewCubic(), base)
	f.countRounds = countRounds
	f.rounds(2, roundOpts{rtt: base})
	h := &f.c.(*cubic).v.hs
	if h.phase != hsSlowStart || f.s.CWnd != 40*testMSS {
		t.Fatalf("setup: phase %v cwnd %.2f segments", h.phase, f.segs())
	}
	return f, h
}

func TestHyStartRTTThreshold(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name    string
		base    time.Duration
		rise    time.Duration
		wantCSS bool
	}{
		// RttThresh = max(4ms, min(lastRoundMinRTT/8, 16ms)).
		{"40ms: rise of base/8 enters CSS", 40 * ms, 5 * ms, true},
		{"40ms: rise below base/8 does not", 40 * ms, 4*ms + 999*time.Microsecond, false},
		{"10ms: MIN_RTT_THRESH 4ms enters CSS", 10 * ms, 4 * ms, true},
		{"10ms: below MIN_RTT_THRESH does not", 10 * ms, 3 * ms, false},
		{"200ms: MAX_RTT_THRESH 16ms enters CSS", 200 * ms, 16 * ms, true},
		{"200ms: below MAX_RTT_THRESH does not", 200 * ms, 15 * ms, false},
		{"RTT steady: stays in slow start", 40 * ms, 0, false},
	}
	for _, m := range roundModes {
		for _, tt := range tests {
			t.Run(m.name+"/"+tt.name, func(t *testing.T) {
				f, h := hyFlow(t, m.count, tt.base)
				f.run(roundOpts{rtt: tt.base + tt.rise})
				// 40 ACKs: the 8th decides; CSS grows by a quarter after.
				want, wantCWnd := hsSlowStart, 80
				if tt.wantCSS {
					want, wantCWnd = hsCSS, 40+8+32/4
				}
				if h.phase != want || f.s.CWnd != wantCWnd*testMSS {
					t.Fatalf("phase %v cwnd %.2f segments, want %v %d", h.phase, f.segs(), want, wantCWnd)
				}
				if f.s.SSThresh != MaxSSThresh {
					t.Fatalf("ssthresh set to %d", f.s.SSThresh)
				}
			})
		}
	}
}

func TestHyStartCSSBackToSlowStart(t *testing.T) {
	for _, m := range roundModes {
		t.Run(m.name, func(t *testing.T) {
			base := 40 * time.Millisecond
			f, h := hyFlow(t, m.count, base)
			f.run(roundOpts{rtt: base + 10*time.Millisecond})
			if h.phase != hsCSS || h.cssBaselineMinRTT != base+10*time.Millisecond {
				t.Fatalf("phase %v baseline %v", h.phase, h.cssBaselineMinRTT)
			}
			// The RTT falls below the baseline: the rise was spurious.
			// 56 ACKs: 8 at the CSS rate, then 48 at the full rate.
			f.run(roundOpts{rtt: base})
			if h.phase != hsSlowStart || h.cssBaselineMinRTT != noRTT {
				t.Fatalf("phase %v baseline %v, want slow start", h.phase, h.cssBaselineMinRTT)
			}
			if want := (56 + 2 + 48) * testMSS; f.s.CWnd != want {
				t.Fatalf("cwnd %.2f segments, want %d", f.segs(), want/testMSS)
			}
			// And it can leave slow start again.
			f.run(roundOpts{rtt: base + 10*time.Millisecond})
			if h.phase != hsCSS {
				t.Fatalf("phase %v after a second rise", h.phase)
			}
		})
	}
}

func TestHyStartCSSRoundsThenCongestionAvoidance(t *testing.T) {
	for _, m := range roundModes {
		t.Run(m.name, func(t *testing.T) {
			base := 40 * time.Millisecond
			high := base + 10*time.Millisecond
			f, h := hyFlow(t, m.count, base)
			c := f.c.(*cubic)
			f.run(roundOpts{rtt: high}) // CSS begins in this round: it counts
			if h.phase != hsCSS {
				t.Fatalf("phase %v", h.phase)
			}
			for i := 2; i <= hsCSSRounds; i++ {
				before := f.s.CWnd
				f.run(roundOpts{rtt: high})
				// CSS grows the window by a quarter per round.
				if h.phase != hsCSS || f.s.CWnd != before+before/hsCSSGrowthDivide {
					t.Fatalf("CSS round %d: phase %v cwnd %d → %d, want ×1.25", i, h.phase, before, f.s.CWnd)
				}
			}
			// CSS_ROUNDS are done: the next ACK enters congestion
			// avoidance with ssthresh = cwnd.
			exitBytes, exit := f.s.CWnd, f.segs()
			f.run(roundOpts{rtt: high})
			if h.phase != hsDone || f.s.SSThresh != exitBytes {
				t.Fatalf("after %d CSS rounds: phase %v ssthresh %d, want %d", hsCSSRounds, h.phase, f.s.SSThresh, exitBytes)
			}
			// RFC 9438 §4.10: the first stage has K = 0, W_max =
			// cwnd_prior = the window HyStart++ left with.
			if c.v.k != 0 || c.v.wMax != exit || c.v.cwndPrior != exit || c.v.alpha != 1 {
				t.Fatalf("first stage: K %v W_max %v cwnd_prior %v α %v, want 0, %v, %v, 1", c.v.k, c.v.wMax, c.v.cwndPrior, c.v.alpha, exit, exit)
			}
			if g := f.segs() - exit; g < 0.9 || g > 2 {
				t.Fatalf("first round of congestion avoidance grew %.2f segments, want about 1", g)
			}
		})
	}
}

func TestHyStartLossEndsIt(t *testing.T) {
	for _, phase := range []string{"slow start", "css"} {
		t.Run(phase, func(t *testing.T) {
			base := 40 * time.Millisecond
			f, h := hyFlow(t, false, base)
			if phase == "css" {
				f.run(roundOpts{rtt: base + 10*time.Millisecond})
			}
			cw := f.s.CWnd
			f.lossAt(Loss)
			if h.phase != hsDone || f.s.SSThresh != int(float64(cw)*0.7) || f.s.CWnd != f.s.SSThresh {
				t.Fatalf("after loss: phase %v cwnd %d ssthresh %d (was %d)", h.phase, f.s.CWnd, f.s.SSThresh, cw)
			}
		})
	}
}

func TestHyStartNeedsEnoughSamples(t *testing.T) {
	base := 40 * time.Millisecond
	rise := roundOpts{rtt: base + 10*time.Millisecond}
	t.Run("no RTT samples", func(t *testing.T) {
		f, h := hyFlow(t, false, base)
		o := rise
		o.noSample = true
		f.run(o)
		if h.phase != hsSlowStart {
			t.Fatalf("phase %v without samples", h.phase)
		}
	})
	t.Run("fewer than N_RTT_SAMPLE", func(t *testing.T) {
		f, h := hyFlow(t, false, base)
		o := rise
		o.ackEvery = 6 // 40 segments in 7 ACKs
		f.run(o)
		if h.phase != hsSlowStart {
			t.Fatalf("phase %v after 7 samples", h.phase)
		}
	})
}

// TestHyStartOnlyInitialSlowStart: after a timeout, slow start runs to
// ssthresh whatever the RTT does (RFC 9406 §4.2).
func TestHyStartOnlyInitialSlowStart(t *testing.T) {
	base := 40 * time.Millisecond
	f, h := hyFlow(t, false, base)
	f.s.InFlight = f.s.CWnd
	f.c.OnCongestion(&f.s, f.now, Timeout)
	rtt := base
	for want := 2; want <= 16; want *= 2 {
		rtt += 20 * time.Millisecond
		f.run(roundOpts{rtt: rtt})
		if f.s.CWnd != want*testMSS || h.phase != hsDone {
			t.Fatalf("cwnd %.2f segments phase %v, want %d", f.segs(), h.phase, want)
		}
	}
}
