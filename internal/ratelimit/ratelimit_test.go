package ratelimit

import (
	"testing"
	"time"
)

func TestBucket(t *testing.T) {
	var b Bucket
	now := time.Unix(100, 0)
	n := 0
	for i := 0; i < 20; i++ {
		if b.Allow(now, 10, 5) {
			n++
		}
	}
	if n != 5 {
		t.Errorf("a full bucket of 5 gave %d", n)
	}
	// 300 ms at 10/s: 3 more.
	now = now.Add(300 * time.Millisecond)
	n = 0
	for i := 0; i < 20; i++ {
		if b.Allow(now, 10, 5) {
			n++
		}
	}
	if n != 3 {
		t.Errorf("after 300 ms at 10/s: %d allowed, want 3", n)
	}
	// A long pause refills only up to the burst.
	now = now.Add(time.Hour)
	n = 0
	for i := 0; i < 20; i++ {
		if b.Allow(now, 10, 5) {
			n++
		}
	}
	if n != 5 {
		t.Errorf("after an hour: %d allowed, want the burst of 5", n)
	}
	if !b.Allow(now, 0, 5) {
		t.Errorf("rate 0 must mean no limit")
	}
}
