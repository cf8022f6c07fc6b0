package socket

import (
	"sync"
	"time"
)

// deadline is a settable point in time that closes a channel when it
// passes, for waiters to select on. It keeps one timer for its life,
// re-armed by set (or none, for a deadline only ever checked with passed,
// such as a write deadline where writes never block). Moving the deadline into the past closes the channel at
// once, so a blocked waiter wakes; moving it from the past into the future
// (or clearing it) makes a new, open channel.
type deadline struct {
	mu      sync.Mutex
	when    time.Time
	timer   *time.Timer
	expired chan struct{}
	done    bool // expired is closed
	noTimer bool
}

// newDeadline returns a deadline with none set. Without a timer, wait's
// channel closes only when set or passed notices the deadline has passed.
func newDeadline(timer bool) *deadline {
	return &deadline{expired: make(chan struct{}), noTimer: !timer}
}

// set moves the deadline to t; the zero t means none.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.when = t
	if d.timer != nil {
		d.timer.Stop()
	}
	if t.IsZero() {
		d.reopen()
		return
	}
	dur := time.Until(t)
	if dur <= 0 {
		d.expire()
		return
	}
	d.reopen()
	if d.noTimer {
		return
	}
	if d.timer == nil {
		d.timer = time.AfterFunc(dur, d.fire)
	} else {
		d.timer.Reset(dur)
	}
}

// fire runs from the timer. A run left over from an earlier arming checks
// the current deadline, so it cannot expire a later one early.
func (d *deadline) fire() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.when.IsZero() && !time.Now().Before(d.when) {
		d.expire()
	}
}

func (d *deadline) expire() {
	if !d.done {
		close(d.expired)
		d.done = true
	}
}

func (d *deadline) reopen() {
	if d.done {
		d.expired = make(chan struct{})
		d.done = false
	}
}

// wait returns the channel that is closed when the current deadline
// passes.
func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.expired
}

// passed reports whether the deadline has passed.
func (d *deadline) passed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.done && !d.when.IsZero() && !time.Now().Before(d.when) {
		d.expire() // the timer has not run yet
	}
	return d.done
}

// stop releases the timer.
func (d *deadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
	}
}
