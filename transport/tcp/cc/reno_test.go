package cc

import (
	"slices"
	"testing"
	"time"
)

func TestSlowStartDoublesPerRTT(t *testing.T) {
	tests := []struct {
		name     string
		newCC    func() Controller
		ackEvery int
		want     []int // window in segments after each round, from IW = 10
	}{
		{"reno/per-segment ACKs", NewReno, 1, []int{20, 40, 80, 160}},
		{"reno/delayed ACKs", NewReno, 2, []int{20, 40, 80, 160}},
		// RFC 3465 L = 2·SMSS: an ACK of 4 segments counts as 2.
		{"reno/stretch ACKs of 4", NewReno, 4, []int{16, 24, 36, 54}},
		{"cubic/per-segment ACKs", NewCubic, 1, []int{20, 40, 80, 160}},
		{"cubic/delayed ACKs", NewCubic, 2, []int{20, 40, 80, 160}},
		// RFC 9406 L = 8·SMSS when not paced.
		{"cubic/stretch ACKs of 4", NewCubic, 4, []int{20, 40, 80, 160}},
		{"cubic/stretch ACKs of 16", NewCubic, 16, []int{18, 28, 44, 68}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFlow(t, tt.newCC(), 100*time.Millisecond)
			if got := f.s.CWnd; got != 10*testMSS {
				t.Fatalf("initial window = %d, want %d", got, 10*testMSS)
			}
			var got []int
			for range tt.want {
				f.run(roundOpts{rtt: 100 * time.Millisecond, ackEvery: tt.ackEvery})
				if f.s.CWnd%testMSS != 0 {
					t.Fatalf("window %d is not whole segments", f.s.CWnd)
				}
				got = append(got, f.s.CWnd/testMSS)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("windows per round = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRenoCongestionAvoidanceOneSegmentPerRTT(t *testing.T) {
	for _, every := range []int{1, 2, 3} {
		f := newFlow(t, NewReno(), 50*time.Millisecond)
		f.setWindow(50, 50)
		for i := 1; i <= 20; i++ {
			f.run(roundOpts{rtt: 50 * time.Millisecond, ackEvery: every})
			if want := (50 + i) * testMSS; f.s.CWnd != want {
				t.Fatalf("ackEvery=%d: after %d rounds cwnd = %d (%.2f segs), want %d", every, i, f.s.CWnd, f.segs(), want)
			}
		}
	}
}

func TestRenoSlowStartStopsAtSSThresh(t *testing.T) {
	f := newFlow(t, NewReno(), 50*time.Millisecond)
	f.setWindow(40, 50)
	f.run(roundOpts{rtt: 50 * time.Millisecond})
	// 10 ACKs fill the window to ssthresh, the other 30 count toward
	// congestion avoidance, which needs 50.
	if got, want := f.s.CWnd, 50*testMSS; got != want {
		t.Fatalf("cwnd = %d, want %d", got, want)
	}
	f.run(roundOpts{rtt: 50 * time.Millisecond})
	if got, want := f.s.CWnd, 51*testMSS; got != want {
		t.Fatalf("cwnd = %d, want %d (leftover bytes carried into congestion avoidance)", got, want)
	}
}

func TestRenoCongestionResponse(t *testing.T) {
	tests := []struct {
		name            string
		event           Event
		cwnd, inFlight  int // segments
		wantSSThresh    int // segments
		wantCWnd        int // right after the event
		wantCWndRecover int // after OnRecoveryEnd
	}{
		{"loss halves the flight", Loss, 100, 100, 50, 100, 50},
		{"ece halves the flight", ECE, 100, 100, 50, 100, 50},
		{"loss uses the flight, not cwnd", Loss, 100, 30, 15, 100, 15},
		{"loss floor is 2 segments", Loss, 4, 2, 2, 4, 2},
		{"timeout: loss window", Timeout, 100, 100, 50, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFlow(t, NewReno(), 50*time.Millisecond)
			f.setWindow(tt.cwnd, -1)
			f.s.InFlight = tt.inFlight * testMSS
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

func TestRenoRepeatedTimeoutHoldsSSThresh(t *testing.T) {
	f := newFlow(t, NewReno(), 50*time.Millisecond)
	f.setWindow(100, -1)
	f.s.InFlight = 100 * testMSS
	f.c.OnCongestion(&f.s, f.now, Timeout)
	if f.s.SSThresh != 50*testMSS || f.s.CWnd != testMSS {
		t.Fatalf("after timeout: cwnd %d ssthresh %d", f.s.CWnd, f.s.SSThresh)
	}
	// The retransmission times out again: RFC 5681 §3.1 holds ssthresh.
	f.s.InFlight = testMSS
	f.c.OnCongestion(&f.s, f.now, Timeout)
	if got, want := f.s.SSThresh, 50*testMSS; got != want {
		t.Fatalf("repeated timeout: ssthresh = %d, want %d", got, want)
	}
	// Slow start after a timeout counts at most 1 SMSS per ACK (RFC 3465
	// §2.3).
	f.c.OnAck(&f.s, &Ack{Now: f.now, Acked: 2 * testMSS})
	if got, want := f.s.CWnd, 2*testMSS; got != want {
		t.Fatalf("after a 2-segment ACK: cwnd = %d, want %d", got, want)
	}
	// Progress was made; a new timeout is a new event.
	f.s.CWnd = 20 * testMSS
	f.s.InFlight = 20 * testMSS
	f.c.OnCongestion(&f.s, f.now, Timeout)
	if got, want := f.s.SSThresh, 10*testMSS; got != want {
		t.Fatalf("timeout after progress: ssthresh = %d, want %d", got, want)
	}
}

func TestRenoUndo(t *testing.T) {
	for _, e := range []Event{Loss, ECE, Timeout} {
		t.Run(e.String(), func(t *testing.T) {
			f := newFlow(t, NewReno(), 50*time.Millisecond)
			f.setWindow(100, 80)
			f.rounds(3, roundOpts{rtt: 50 * time.Millisecond})
			want := f.s
			f.s.InFlight = f.s.CWnd
			f.c.OnCongestion(&f.s, f.now, e)
			if e != Timeout {
				f.s.CWnd = 60 * testMSS // the core's PRR at work
			}
			f.run(roundOpts{rtt: 50 * time.Millisecond, inRecovery: e != Timeout})
			f.c.Undo(&f.s, f.now)
			if f.s.CWnd != want.CWnd || f.s.SSThresh != want.SSThresh {
				t.Fatalf("after undo: cwnd %d ssthresh %d, want %d %d", f.s.CWnd, f.s.SSThresh, want.CWnd, want.SSThresh)
			}
			// Recovery ending after the undo must not deflate the window.
			f.c.OnRecoveryEnd(&f.s, f.now)
			if f.s.CWnd != want.CWnd {
				t.Fatalf("recovery end after undo: cwnd %d, want %d", f.s.CWnd, want.CWnd)
			}
			// One undo per event.
			f.s.CWnd = 10 * testMSS
			f.c.Undo(&f.s, f.now)
			if f.s.CWnd != 10*testMSS {
				t.Fatalf("second undo changed cwnd to %d", f.s.CWnd)
			}
		})
	}
	t.Run("window grew since", func(t *testing.T) {
		f := newFlow(t, NewReno(), 50*time.Millisecond)
		f.setWindow(100, 80)
		f.lossAt(Loss)
		f.s.CWnd = 120 * testMSS
		f.c.Undo(&f.s, f.now)
		if f.s.CWnd != 120*testMSS || f.s.SSThresh != 80*testMSS {
			t.Fatalf("cwnd %d ssthresh %d, want %d %d", f.s.CWnd, f.s.SSThresh, 120*testMSS, 80*testMSS)
		}
	})
	t.Run("nothing to undo", func(t *testing.T) {
		f := newFlow(t, NewReno(), 50*time.Millisecond)
		want := f.s
		f.c.Undo(&f.s, f.now)
		if f.s != want {
			t.Fatalf("state %+v, want %+v", f.s, want)
		}
	})
}

// TestNoGrowth: neither controller grows the window from ACKs that arrive
// in recovery or while the application limits sending.
func TestNoGrowth(t *testing.T) {
	ctrls := []struct {
		name  string
		newCC func() Controller
	}{{"reno", NewReno}, {"cubic", NewCubic}}
	phases := []struct {
		name           string
		cwnd, ssthresh int
	}{{"slow start", 20, -1}, {"congestion avoidance", 100, 100}}
	kinds := []struct {
		name string
		o    roundOpts
	}{
		{"in recovery", roundOpts{inRecovery: true}},
		{"app-limited", roundOpts{appLimited: true}},
	}
	for _, c := range ctrls {
		for _, p := range phases {
			for _, k := range kinds {
				t.Run(c.name+"/"+p.name+"/"+k.name, func(t *testing.T) {
					f := newFlow(t, c.newCC(), 20*time.Millisecond)
					f.setWindow(p.cwnd, p.ssthresh)
					if p.name == "congestion avoidance" {
						// An epoch under way, so time could tempt it.
						f.run(roundOpts{rtt: 20 * time.Millisecond})
					}
					want := f.s
					o := k.o
					o.rtt = 20 * time.Millisecond
					f.rounds(20, o)
					if f.s.CWnd != want.CWnd || f.s.SSThresh != want.SSThresh {
						t.Fatalf("cwnd %d ssthresh %d, want %d %d", f.s.CWnd, f.s.SSThresh, want.CWnd, want.SSThresh)
					}
				})
			}
		}
	}
}

func TestPacingRateStaysZero(t *testing.T) {
	for _, newCC := range []func() Controller{NewReno, NewCubic} {
		c := newCC()
		s := State{MSS: testMSS, PacingRate: 12345}
		c.Init(&s, t0)
		if s.PacingRate != 0 {
			t.Fatalf("%s: Init left pacing rate %d", c.Name(), s.PacingRate)
		}
		f := &flow{t: t, c: c, s: s, now: t0}
		f.rounds(5, roundOpts{rtt: 10 * time.Millisecond})
		f.lossAt(Loss)
		f.rounds(5, roundOpts{rtt: 10 * time.Millisecond})
		if f.s.PacingRate != 0 {
			t.Fatalf("%s: pacing rate %d", c.Name(), f.s.PacingRate)
		}
	}
}

func TestInitKeepsCoreSSThresh(t *testing.T) {
	for _, newCC := range []func() Controller{NewReno, NewCubic} {
		c := newCC()
		s := State{MSS: 536, SSThresh: 64 << 10}
		c.Init(&s, t0)
		if s.CWnd != InitialWindow(536) || s.SSThresh != 64<<10 {
			t.Errorf("%s: cwnd %d ssthresh %d", c.Name(), s.CWnd, s.SSThresh)
		}
		s = State{MSS: 536}
		c.Init(&s, t0)
		if s.SSThresh != MaxSSThresh {
			t.Errorf("%s: ssthresh %d, want MaxSSThresh", c.Name(), s.SSThresh)
		}
	}
}
