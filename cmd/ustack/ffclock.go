package main

import (
	"sync"
	"sync/atomic"
	"time"

	"ustack/internal/clock"
)

// ffClock is the demo's clock: the real clock, except that it can run
// faster for a while. IPv6 address configuration waits in protocol time
// (a random delay of up to a second before an interface speaks, a second
// of duplicate address detection per address, seconds between router
// advertisements: RFC 4861 §10, RFC 4862 §5.4); the demo fast-forwards
// through those waits while nothing else is running, so it still takes
// a fraction of a second. At the normal rate it reads real time plus the
// time skipped so far, so engines, which use only differences between
// readings, see a steady monotonic clock.
type ffClock struct {
	// base is read without the lock (engines read the clock often);
	// it changes, under mu, only with the rate.
	base atomic.Pointer[ffBase]

	mu      sync.Mutex
	pending map[*ffTimer]struct{}
}

// ffBase is where the clock stood at its last rate change.
type ffBase struct {
	real time.Time // real time then
	virt time.Time // the clock's reading then
	rate float64   // clock seconds per real second since
}

func (b *ffBase) now() time.Time {
	return b.virt.Add(time.Duration(float64(time.Since(b.real)) * b.rate))
}

var _ clock.Clock = (*ffClock)(nil)

func newFFClock() *ffClock {
	now := time.Now()
	c := &ffClock{pending: map[*ffTimer]struct{}{}}
	c.base.Store(&ffBase{real: now, virt: now, rate: 1})
	return c
}

// Now returns the clock's reading.
func (c *ffClock) Now() time.Time { return c.base.Load().now() }

// setRate makes the clock run rate times as fast as real time from now
// on; timers already armed keep their due times on the clock.
func (c *ffClock) setRate(rate float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.base.Store(&ffBase{real: time.Now(), virt: c.Now(), rate: rate})
	for t := range c.pending {
		t.arm()
	}
}

// realDelay is the real time until the clock reads when.
func (c *ffClock) realDelay(when time.Time) time.Duration {
	b := c.base.Load()
	return time.Duration(float64(when.Sub(b.now())) / b.rate)
}

// AfterFunc calls f in its own goroutine once the clock has advanced by d.
func (c *ffClock) AfterFunc(d time.Duration, f func()) clock.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &ffTimer{c: c, f: f}
	t.schedule(d)
	return t
}

// ffTimer is a pending call of an ffClock: a real timer re-armed whenever
// the clock's rate changes.
type ffTimer struct {
	c    *ffClock
	f    func()
	when time.Time   // due time on the clock; guarded by c.mu
	gen  uint64      // bumped on every (re)arming and stop; guarded by c.mu
	rt   *time.Timer // guarded by c.mu
}

// maxDelay bounds a timer's delay: engines arm "never" timers with
// delays near the largest Duration, which would overflow the clock's
// arithmetic (and, converted from float64, come out negative).
const maxDelay = 100 * 365 * 24 * time.Hour

// schedule arms t to run d from now. Called with c.mu held.
func (t *ffTimer) schedule(d time.Duration) {
	t.when = t.c.Now().Add(min(max(d, 0), maxDelay))
	t.c.pending[t] = struct{}{}
	t.arm()
}

// arm (re)starts the real timer for t.when. Called with c.mu held.
func (t *ffTimer) arm() {
	if t.rt != nil {
		t.rt.Stop()
	}
	t.gen++
	gen := t.gen
	t.rt = time.AfterFunc(t.c.realDelay(t.when), func() { t.fire(gen) })
}

// fire runs f if this arming is still current and due; a timer that
// fires early (the rate dropped in between) is re-armed.
func (t *ffTimer) fire(gen uint64) {
	c := t.c
	c.mu.Lock()
	if t.gen != gen {
		c.mu.Unlock()
		return
	}
	if _, ok := c.pending[t]; !ok {
		c.mu.Unlock()
		return
	}
	if c.Now().Before(t.when) {
		t.arm()
		c.mu.Unlock()
		return
	}
	delete(c.pending, t)
	c.mu.Unlock()
	t.f()
}

// Stop cancels the call and reports whether it was pending.
func (t *ffTimer) Stop() bool {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	_, was := c.pending[t]
	delete(c.pending, t)
	t.gen++
	if t.rt != nil {
		t.rt.Stop()
	}
	return was
}

// Reset re-arms the call to run after d and reports whether it was
// pending.
func (t *ffTimer) Reset(d time.Duration) bool {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	_, was := c.pending[t]
	t.schedule(d)
	return was
}
