// Package ratelimit is a token bucket for the rate limits protocols apply
// to what they send (ICMP errors: RFC 1812 §4.3.2.8, RFC 4443 §2.4 (f)).
// Time comes from the caller, so it runs on any clock.
package ratelimit

import (
	"sync"
	"time"
)

// Bucket is a token bucket whose rate and burst are passed at each call,
// so they can follow tunables. The zero value starts full on first use.
// It is safe for concurrent use.
type Bucket struct {
	mu      sync.Mutex
	tokens  float64
	last    time.Time
	started bool
}

// Allow takes a token if one is there and reports whether it did. Tokens
// accrue at rate per second up to burst; a rate of 0 or less means no
// limit.
func (b *Bucket) Allow(now time.Time, rate, burst float64) bool {
	if rate <= 0 {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.started {
		b.started, b.tokens, b.last = true, burst, now
	}
	b.tokens += now.Sub(b.last).Seconds() * rate
	b.last = now
	if b.tokens > burst {
		b.tokens = burst
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
