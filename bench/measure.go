package main

import (
	"fmt"
	"runtime"
	"sort"
	"sync/atomic"
	"syscall"
	"time"
)

// sample is the process's resource use at one instant.
type sample struct {
	t      time.Time
	cpu    time.Duration // user + system CPU time of the whole process
	allocs uint64        // heap objects allocated so far (MemStats.Mallocs)
}

// take reads a sample. It stops the world briefly (ReadMemStats): call it
// outside the measured loop only.
func take() sample {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return sample{t: time.Now(), cpu: procCPU(), allocs: ms.Mallocs}
}

// delta is what happened between two samples.
type delta struct {
	wall, cpu time.Duration
	allocs    uint64
}

func since(a sample) delta {
	b := take()
	return delta{wall: b.t.Sub(a.t), cpu: b.cpu - a.cpu, allocs: b.allocs - a.allocs}
}

// procCPU is the process's user plus system time (getrusage RUSAGE_SELF):
// both stacks and the harness, since they all live in this process.
func procCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// heapLive returns the live heap after a full collection.
func heapLive() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// median of xs (the mean of the middle two for an even count); 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// percentile of sorted durations, p in [0, 1], in microseconds.
func percentileUS(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p * float64(len(sorted)-1))
	return float64(sorted[i]) / float64(time.Microsecond)
}

// stallWatch fails a workload that stops making progress. It polls progress
// every second from its own goroutine; if the value has not changed for
// stall, it calls onStall once (which should unblock the workload, e.g.
// by closing its stacks) and records why. stop ends it and returns that
// reason, or nil when the workload finished on its own.
type stallWatch struct {
	done   chan struct{}
	ended  chan struct{}
	reason atomic.Pointer[error]
}

func watch(what string, progress *atomic.Int64, stall time.Duration, onStall func()) *stallWatch {
	w := &stallWatch{done: make(chan struct{}), ended: make(chan struct{})}
	go func() {
		defer close(w.ended)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		last, lastChange := progress.Load(), time.Now()
		for {
			select {
			case <-w.done:
				return
			case now := <-tick.C:
				if v := progress.Load(); v != last {
					last, lastChange = v, now
					continue
				}
				if now.Sub(lastChange) >= stall {
					err := fmt.Errorf("%s stalled: no progress for %v (progress counter at %d)", what, stall, last)
					w.reason.Store(&err)
					onStall()
					return
				}
			}
		}
	}()
	return w
}

func (w *stallWatch) stop() error {
	close(w.done)
	<-w.ended
	if p := w.reason.Load(); p != nil {
		return *p
	}
	return nil
}

// fired reports whether the watchdog has given up on the workload.
func (w *stallWatch) fired() error {
	if p := w.reason.Load(); p != nil {
		return *p
	}
	return nil
}
