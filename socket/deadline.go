package socket

import (
	"sync"
	"sync/atomic"
	"time"
)

// deadline is a settable point in time that closes a channel when it
// passes, for waiters to select on. It keeps one timer for its life, made
// when a deadline is first set and re-armed by set (or none, for a
// deadline only ever checked with passed, such as a write deadline where
// writes never block). Moving the deadline into the past closes the
// channel at once, so a blocked waiter wakes; moving it from the past into
// the future (or clearing it) opens a new one. The channel is made only
// when someone waits: an idle socket, or one whose deadline passes with no
// waiter, holds none.
type deadline struct {
	mu      sync.Mutex
	when    time.Time
	timer   *time.Timer
	expired chan struct{} // nil until wait needs it
	done    bool          // the deadline has passed: expired, if made, is closed
	noTimer bool
}

// closedChan is a closed channel, what wait returns for a deadline that
// has passed before anyone waited.
var closedChan = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

// lazyDeadline is a deadline made when first set or waited on: a socket
// that never has a deadline, or never blocks, holds none (about 60
// bytes). Without a timer (noTimer), wait's channel closes only when set
// or passed notices the deadline has passed.
type lazyDeadline struct {
	d       atomic.Pointer[deadline]
	noTimer bool // set before the socket is shared
}

// get returns the deadline, making it on first use.
func (l *lazyDeadline) get() *deadline {
	if d := l.d.Load(); d != nil {
		return d
	}
	d := &deadline{noTimer: l.noTimer}
	if !l.d.CompareAndSwap(nil, d) {
		return l.d.Load()
	}
	return d
}

func (l *lazyDeadline) set(t time.Time) { l.get().set(t) }

func (l *lazyDeadline) wait() <-chan struct{} { return l.get().wait() }

func (l *lazyDeadline) passed() bool {
	d := l.d.Load()
	return d != nil && d.passed()
}

func (l *lazyDeadline) stop() {
	if d := l.d.Load(); d != nil {
		d.stop()
	}
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
		if d.expired != nil {
			close(d.expired)
		}
		d.done = true
	}
}

func (d *deadline) reopen() {
	if d.done {
		d.expired = nil // the next wait makes an open one
		d.done = false
	}
}

// wait returns the channel that is closed when the current deadline
// passes.
func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.expired == nil {
		if d.done {
			return closedChan
		}
		d.expired = make(chan struct{})
	}
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
