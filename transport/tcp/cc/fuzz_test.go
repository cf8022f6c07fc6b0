package cc

import (
	"math"
	"testing"
	"time"
)

// FuzzControllers drives both controllers with arbitrary event sequences,
// a core's PRR included, and checks that windows stay sane: no panic,
// ssthresh ≥ 2·SMSS, 1·SMSS ≤ cwnd ≤ maxCWnd, no pacing, CUBIC's state
// finite.
func FuzzControllers(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 5, 0, 0, 4, 0, 0})
	f.Add([]byte{0, 0, 2, 0, 0, 6, 3, 0, 0, 0, 0, 7, 0, 0})
	f.Add([]byte{0, 200, 0, 200, 1, 9, 5, 0, 0, 0, 8, 0, 255, 255, 255, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		for _, newCC := range []func() Controller{NewReno, NewCubic} {
			c := newCC()
			s := State{MSS: testMSS, SRTT: 20 * time.Millisecond, MinRTT: 15 * time.Millisecond}
			now := t0
			c.Init(&s, now)
			inRecovery := false
			for i := 0; i+2 < len(ops); i += 3 {
				op, x, y := int(ops[i]%10), int(ops[i+1]), int(ops[i+2])
				now = now.Add(time.Duration(x*y) * time.Millisecond)
				s.InFlight = min(s.CWnd, (x+1)*testMSS)
				switch op {
				case 0, 1, 2, 3:
					c.OnAck(&s, &Ack{
						Now:        now,
						Acked:      (x%64 + 1) * testMSS * (op%2 + 1) / 2,
						RTT:        time.Duration(y) * time.Millisecond,
						InRecovery: inRecovery,
						AppLimited: op == 3,
						Round:      uint64(x / 16 * (op % 2)),
					})
				case 4:
					c.OnCongestion(&s, now, Loss)
					inRecovery = true
				case 5:
					c.OnCongestion(&s, now, Event(1+x%3))
					inRecovery = s.CWnd > s.MSS
				case 6:
					c.OnRecoveryEnd(&s, now)
					inRecovery = false
				case 7:
					c.Undo(&s, now)
					inRecovery = false
				case 8:
					c.OnSent(&s, now, y*testMSS)
				case 9:
					// The core's PRR moving cwnd during recovery.
					if inRecovery {
						s.CWnd = max(testMSS, s.CWnd*y/256)
					}
				}
				if s.SSThresh < 2*testMSS || s.CWnd < testMSS || s.CWnd > maxCWnd || s.PacingRate != 0 {
					t.Fatalf("%s after op %d (%d,%d,%d): %+v", c.Name(), i/3, op, x, y, s)
				}
				if cu, ok := c.(*cubic); ok && cu.cubicState != nil {
					for _, v := range []float64{cu.v.wMax, cu.v.k, cu.v.wEst, cu.v.frac, cu.v.cwndPrior} {
						if math.IsNaN(v) || math.IsInf(v, 0) {
							t.Fatalf("cubic state not finite: %+v", cu.v)
						}
					}
				}
			}
		}
	})
}
