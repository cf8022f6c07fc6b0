package main

import (
	"testing"
	"testing/synctest"
	"time"
)

// TestFFClock: timers keep their due times on the clock across rate
// changes; Stop and Reset report and change what is pending.
func TestFFClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newFFClock()
		start, realStart := c.Now(), time.Now()
		fired := make(chan time.Duration, 4)
		at := func() { fired <- c.Now().Sub(start) }
		c.AfterFunc(10*time.Second, at)
		stopped := c.AfterFunc(5*time.Second, at)
		reset := c.AfterFunc(time.Hour, at)
		if !stopped.Stop() || stopped.Stop() {
			t.Errorf("Stop: want true, then false")
		}
		if !reset.Reset(20 * time.Second) {
			t.Errorf("Reset of a pending timer: want true")
		}
		// One real second at the normal rate, then 100 times as fast:
		// the 10 s timer fires 90 ms of real time later.
		<-time.After(time.Second)
		c.setRate(100)
		if got := <-fired; got != 10*time.Second || time.Since(realStart) != 1090*time.Millisecond {
			t.Errorf("10 s timer fired at %v on the clock, %v real; want 10s, 1.09s", got, time.Since(realStart))
		}
		// Back to the normal rate halfway to the 20 s timer.
		<-time.After(50 * time.Millisecond)
		c.setRate(1)
		if got := <-fired; got != 20*time.Second || time.Since(realStart) != 6140*time.Millisecond {
			t.Errorf("20 s timer fired at %v on the clock, %v real; want 20s, 6.14s", got, time.Since(realStart))
		}
		if reset.Stop() {
			t.Errorf("Stop after firing: want false")
		}
		synctest.Wait()
		if len(fired) != 0 {
			t.Errorf("a stopped timer fired")
		}
	})
}
