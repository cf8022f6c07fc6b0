// Package clock gives protocol engines their time. Engines never call the
// time package directly: they take a Clock, so tests run timers in virtual
// time with Fake (or under testing/synctest with Real).
package clock

import "time"

// Clock tells the time and runs functions later.
type Clock interface {
	// Now returns the current time. Engines use only differences between
	// readings (monotonic time).
	Now() time.Time
	// AfterFunc calls f in its own goroutine after d. The Timer stops or
	// re-arms it.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending call made by AfterFunc.
type Timer interface {
	// Stop cancels the call and reports whether it was pending.
	Stop() bool
	// Reset re-arms the call to run after d and reports whether it was
	// pending.
	Reset(d time.Duration) bool
}

// Real is the system clock.
type Real struct{}

func (Real) Now() time.Time { return time.Now() }

func (Real) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
