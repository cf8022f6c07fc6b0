package cc

import (
	"math"
	"testing"
	"time"
)

func TestCubicCongestionResponse(t *testing.T) {
	tests := []struct {
		name            string
		event           Event
		cwnd            int // segments
		wantSSThresh    int // segments
		wantCWnd        int // right after the event
		wantCWndRecover int // after OnRecoveryEnd
	}{
		{"loss: ×0.7", Loss, 100, 70, 100, 70},
		{"ece: ×0.7", ECE, 100, 70, 100, 70},
		{"loss floor is 2 segments", Loss, 2, 2, 2, 2},
		{"timeout: ×0.7 and the loss window", Timeout, 100, 70, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFlow(t, NewCubic(), 50*time.Millisecond)
			f.setWindow(tt.cwnd, -1)
			f.s.InFlight = f.s.CWnd
			f.c.OnCongestion(&f.s, f.now, tt.event)
			if got, want := f.s.SSThresh, tt.wantSSThresh*testMSS; got != want {
				t.Errorf("ssthresh = %d, want %d", got, want)
			}
			if got, want := f.s.CWnd, tt.wantCWnd*testMSS; got != want {
				t.Errorf("cwnd after %v = %d, want %d", tt.event, got, want)
			}
			f.c.OnRecoveryEnd(&f.s, f.now)
			if got, want := f.s.CWnd, tt.wantCWndRecover*testMSS; got != want {
				t.Errorf("cwnd after recovery = %d, want %d", got, want)
			}
		})
	}
}

// cubicAfterLoss is a CUBIC flow that just recovered from a loss at wMax
// segments with the given RTT.
func cubicAfterLoss(t *testing.T, wMax int, rtt time.Duration) (*flow, *cubic) {
	t.Helper()
	f := newFlow(t, NewCubic(), rtt)
	f.setWindow(wMax, -1)
	f.lossAt(Loss)
	return f, f.c.(*cubic)
}

// wCubicRef is RFC 9438 Figure 1 with K from Figure 2, written out again
// here so the test does not trust the code under test.
func wCubicRef(t, wMax, cwndEpoch float64) float64 {
	k := math.Cbrt((wMax - cwndEpoch) / 0.4)
	return 0.4*math.Pow(t-k, 3) + wMax
}

func TestCubicFollowsCurve(t *testing.T) {
	const wMax = 200.0
	rtt := 100 * time.Millisecond
	f, _ := cubicAfterLoss(t, wMax, rtt)
	if f.segs() != 140 {
		t.Fatalf("window after loss at %v = %.2f segments, want 140", wMax, f.segs())
	}
	k := math.Cbrt(wMax * (1 - 0.7) / 0.4) // §4.2 as the brief states it
	epoch := f.now.Add(rtt / 140)          // the first ACK in congestion avoidance
	var ts, ws []float64
	for f.now.Sub(epoch).Seconds() < 2*k {
		f.run(roundOpts{rtt: rtt})
		ts = append(ts, f.now.Sub(epoch).Seconds())
		ws = append(ws, f.segs())
	}
	nearK := -1
	for i, tt := range ts {
		if want := wCubicRef(tt, wMax, 140); !near(ws[i], want, 0.5) {
			t.Errorf("t=%.2fs: cwnd %.2f segments, W_cubic(t) = %.2f", tt, ws[i], want)
		}
		if nearK < 0 || math.Abs(tt-k) < math.Abs(ts[nearK]-k) {
			nearK = i
		}
	}
	if !near(ws[nearK], wMax, 1) {
		t.Errorf("at t=%.2fs ≈ K=%.2fs: cwnd %.2f segments, want W_max %v ±1", ts[nearK], k, ws[nearK], wMax)
	}
	// Concave before K: growth per round falls; convex after: it rises.
	// Compare the growth over windows of 10 rounds.
	growth := func(i int) float64 { return ws[i+10] - ws[i] }
	for i := 0; i+20 <= nearK-5; i += 10 {
		if growth(i) <= growth(i+10) {
			t.Errorf("concave region: growth over rounds %d..%d (%.2f) not above %d..%d (%.2f)", i, i+10, growth(i), i+10, i+20, growth(i+10))
		}
		if ws[i+20] >= wMax {
			t.Errorf("round %d before K: cwnd %.2f ≥ W_max", i+20, ws[i+20])
		}
	}
	for i := nearK + 5; i+20 < len(ws); i += 10 {
		if growth(i) >= growth(i+10) {
			t.Errorf("convex region: growth over rounds %d..%d (%.2f) not below %d..%d (%.2f)", i, i+10, growth(i), i+10, i+20, growth(i+10))
		}
		if ws[i] <= wMax {
			t.Errorf("round %d after K: cwnd %.2f ≤ W_max", i, ws[i])
		}
	}
}

// TestCubicTargetClamp: however far ahead the curve is, one RTT's ACKs
// grow the window by at most half (target ≤ 1.5·cwnd, §4.2): each ACK of a
// segment adds (1.5·cwnd − cwnd)/cwnd = 0.5 segment.
func TestCubicTargetClamp(t *testing.T) {
	f, c := cubicAfterLoss(t, 100, 100*time.Millisecond)
	f.run(roundOpts{rtt: 100 * time.Millisecond})
	c.v.epochStart = c.v.epochStart.Add(-time.Hour) // the curve is far ahead
	before := f.segs()
	f.run(roundOpts{rtt: 100 * time.Millisecond})
	if got := f.segs(); got > 1.5*before+1.0/testMSS || got < 1.45*before {
		t.Fatalf("one round from %.2f segments reached %.2f, want ×1.5 and never more", before, got)
	}
}

func TestCubicRenoFriendly(t *testing.T) {
	tests := []struct {
		name     string
		wMax     int
		rtt      time.Duration
		wantReno bool
	}{
		{"short RTT, small BDP: Reno-friendly", 20, time.Millisecond, true},
		{"long RTT, large BDP: cubic", 200, 100 * time.Millisecond, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, c := cubicAfterLoss(t, tt.wMax, tt.rtt)
			start := f.segs()
			epoch := f.now.Add(tt.rtt / time.Duration(start))
			var perRound []float64
			for range 30 {
				before := f.segs()
				f.run(roundOpts{rtt: tt.rtt})
				perRound = append(perRound, f.segs()-before)
				wc := wCubicRef(f.now.Sub(epoch).Seconds(), float64(tt.wMax), start)
				reno := f.s.CWnd == toBytes(c.v.wEst, testMSS) && f.segs() > wc+0.5
				if reno != tt.wantReno {
					t.Fatalf("t=%v: cwnd %.2f, W_est %.2f, W_cubic %.2f: Reno-friendly = %v, want %v",
						f.now.Sub(epoch), f.segs(), c.v.wEst, wc, reno, tt.wantReno)
				}
			}
			if !tt.wantReno {
				return
			}
			// α_cubic ≈ 0.53 segments per RTT until W_est reaches
			// cwnd_prior (20), then Reno's 1 (§4.3).
			for i, g := range perRound {
				switch {
				case i < 10 && !near(g, alphaCubic, 0.05):
					t.Errorf("round %d grew %.3f segments, want α_cubic %.3f", i, g, alphaCubic)
				case i > 13 && !near(g, 1, 0.05):
					t.Errorf("round %d grew %.3f segments, want 1 (α = 1 past cwnd_prior)", i, g)
				}
			}
		})
	}
}

func TestCubicFastConvergence(t *testing.T) {
	for _, fc := range []bool{true, false} {
		name := "off"
		if fc {
			name = "on"
		}
		t.Run(name, func(t *testing.T) {
			rtt := 100 * time.Millisecond
			f, c := cubicAfterLoss(t, 200, rtt)
			c.fastConvergence = fc
			for f.segs() < 170 {
				f.run(roundOpts{rtt: rtt})
			}
			cw := f.segs()
			f.lossAt(Loss) // below the old W_max: the share is shrinking
			want := cw
			if fc {
				want = cw * (1 + 0.7) / 2
			}
			if !near(c.v.wMax, want, 1e-9) {
				t.Fatalf("W_max = %.3f after a loss at %.3f, want %.3f", c.v.wMax, cw, want)
			}
			// The new plateau is the lowered W_max, reached at K.
			epochCwnd := f.segs()
			k := math.Cbrt((want - epochCwnd) / 0.4)
			epoch := f.now.Add(rtt / time.Duration(epochCwnd))
			for f.now.Sub(epoch).Seconds() < k-rtt.Seconds()/2 {
				f.run(roundOpts{rtt: rtt})
			}
			if !near(f.segs(), want, 1) {
				t.Fatalf("at K = %.2fs cwnd is %.2f segments, want W_max %.2f ±1", k, f.segs(), want)
			}
		})
	}
}

func TestCubicTimeoutRestartsCurve(t *testing.T) {
	rtt := 50 * time.Millisecond
	f, c := cubicAfterLoss(t, 200, rtt)
	f.rounds(5, roundOpts{rtt: rtt})
	f.setWindow(100, 100)
	f.s.InFlight = f.s.CWnd
	f.c.OnCongestion(&f.s, f.now, Timeout)
	if f.s.CWnd != testMSS || f.s.SSThresh != 70*testMSS {
		t.Fatalf("after timeout: cwnd %d ssthresh %d, want %d %d", f.s.CWnd, f.s.SSThresh, testMSS, 70*testMSS)
	}
	if c.v.epoch {
		t.Fatal("timeout left the epoch running")
	}
	// Slow start back to ssthresh: 1, 2, 4, ... 64, then 70.
	for want := 2; want <= 64; want *= 2 {
		f.run(roundOpts{rtt: rtt})
		if f.s.CWnd != want*testMSS {
			t.Fatalf("slow start after timeout: cwnd %.2f segments, want %d", f.segs(), want)
		}
	}
	f.run(roundOpts{rtt: rtt})
	// §4.8: the stage begins with K = 0, W_max = W_est = cwnd_epoch.
	if !c.v.epoch || c.v.k != 0 || c.v.wMax != 70 || c.v.cwndEpoch != 70 {
		t.Fatalf("stage after timeout: epoch %v K %v W_max %v cwnd_epoch %v, want K 0 and 70", c.v.epoch, c.v.k, c.v.wMax, c.v.cwndEpoch)
	}
	prev := f.segs()
	for range 10 {
		f.run(roundOpts{rtt: rtt})
		if f.segs() < prev {
			t.Fatalf("window shrank from %.2f to %.2f", prev, f.segs())
		}
		prev = f.segs()
	}
}

func TestCubicUndo(t *testing.T) {
	rtt := 100 * time.Millisecond
	for _, e := range []Event{Loss, ECE, Timeout} {
		t.Run(e.String(), func(t *testing.T) {
			f, c := cubicAfterLoss(t, 200, rtt)
			f.rounds(20, roundOpts{rtt: rtt})
			wantS, wantV := f.s, c.v
			f.s.InFlight = f.s.CWnd
			f.c.OnCongestion(&f.s, f.now, e)
			if e != Timeout {
				f.s.CWnd = f.s.SSThresh // the core's PRR at work
			}
			f.run(roundOpts{rtt: rtt, inRecovery: e != Timeout})
			f.c.Undo(&f.s, f.now)
			if f.s.CWnd != wantS.CWnd || f.s.SSThresh != wantS.SSThresh {
				t.Fatalf("after undo: cwnd %d ssthresh %d, want %d %d", f.s.CWnd, f.s.SSThresh, wantS.CWnd, wantS.SSThresh)
			}
			if c.v != wantV {
				t.Fatalf("after undo:\n got %+v\nwant %+v", c.v, wantV)
			}
			f.c.OnRecoveryEnd(&f.s, f.now)
			if f.s.CWnd != wantS.CWnd {
				t.Fatalf("recovery end after undo: cwnd %d, want %d", f.s.CWnd, wantS.CWnd)
			}
		})
	}
	t.Run("window grew since", func(t *testing.T) {
		f, c := cubicAfterLoss(t, 200, rtt)
		f.rounds(5, roundOpts{rtt: rtt})
		f.lossAt(Loss)
		f.rounds(30, roundOpts{rtt: rtt})
		wantS, wantV := f.s, c.v
		f.s.CWnd = 500 * testMSS
		wantS.CWnd = f.s.CWnd
		f.c.Undo(&f.s, f.now)
		if f.s != wantS || c.v != wantV {
			t.Fatalf("undo changed a window above the prior one: %+v", f.s)
		}
	})
}

// TestCubicUnusedTimeLeftOut: time spent app-limited or idle does not
// count in t (RFC 9438 §5.8), so a flow that pauses picks up the curve
// where it left it, exactly like one that never paused.
func TestCubicUnusedTimeLeftOut(t *testing.T) {
	rtt := 100 * time.Millisecond
	pauses := []struct {
		name  string
		pause func(f *flow)
	}{
		{"app-limited ACKs", func(f *flow) { f.rounds(30, roundOpts{rtt: rtt, appLimited: true}) }},
		{"idle, then a send", func(f *flow) {
			f.now = f.now.Add(3 * time.Second)
			f.s.InFlight = 0
			f.c.OnSent(&f.s, f.now, testMSS)
		}},
	}
	for _, p := range pauses {
		t.Run(p.name, func(t *testing.T) {
			a, _ := cubicAfterLoss(t, 200, rtt)
			b, _ := cubicAfterLoss(t, 200, rtt)
			a.rounds(5, roundOpts{rtt: rtt})
			b.rounds(5, roundOpts{rtt: rtt})
			p.pause(b)
			if a.s.CWnd != b.s.CWnd {
				t.Fatalf("window moved in the pause: %d, want %d", b.s.CWnd, a.s.CWnd)
			}
			for i := range 20 {
				a.run(roundOpts{rtt: rtt})
				b.run(roundOpts{rtt: rtt})
				if a.s.CWnd != b.s.CWnd {
					t.Fatalf("round %d after the pause: cwnd %.2f segments, without the pause %.2f", i, b.segs(), a.segs())
				}
			}
		})
	}
}

// TestCubicSlowStartLeftover: the bytes of the ACK that fills the window to
// ssthresh that are left go to congestion avoidance, which starts its
// epoch there.
func TestCubicSlowStartLeftover(t *testing.T) {
	f := newFlow(t, NewCubic(), 10*time.Millisecond)
	c := f.c.(*cubic)
	f.s.SSThresh = 15 * testMSS // set by the core: HyStart++ stays out
	f.run(roundOpts{rtt: 10 * time.Millisecond})
	if f.s.CWnd < 15*testMSS || !c.v.epoch {
		t.Fatalf("cwnd %.2f segments, epoch %v: want ≥ 15 and an epoch", f.segs(), c.v.epoch)
	}
	if c.v.wMax != 15 || c.v.k != 0 {
		t.Fatalf("first stage without a loss: W_max %v K %v, want 15 and 0 (§4.10)", c.v.wMax, c.v.k)
	}
}
