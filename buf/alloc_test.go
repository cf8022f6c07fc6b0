// sync.Pool drops a random share of what is put into it when the race
// detector is on, so allocation budgets hold only without it.

//go:build !race

package buf

import (
	"runtime"
	"runtime/debug"
	"testing"
)

// allocs measures f like testing.AllocsPerRun, with the garbage collector
// off so that sync.Pool (which empties its caches at each collection) keeps
// what was put into it. The pools are warmed first.
func allocs(t *testing.T, f func()) float64 {
	t.Helper()
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	runtime.GC()
	for range 100 {
		f()
	}
	return testing.AllocsPerRun(1000, f)
}

func TestAllocsNewPrependTrimRelease(t *testing.T) {
	got := allocs(t, func() {
		p := New(DefaultHeadroom, 1400)
		h := p.Prepend(20)
		h[0] = 0x45
		p.Prepend(14)
		p.TrimFront(34)
		p.Release()
	})
	if got != 0 {
		t.Errorf("New+Prepend+TrimFront+Release: %v allocations, want 0", got)
	}
}

func TestAllocsFromBytesSplitRelease(t *testing.T) {
	data := make([]byte, 3000)
	got := allocs(t, func() {
		p := FromBytes(data)
		q := p.Split(1480)
		r := q.Split(1480)
		p.Release()
		q.Release()
		r.Release()
	})
	if got != 0 {
		t.Errorf("FromBytes+Split+Release: %v allocations, want 0", got)
	}
}

func TestAllocsCloneConcatPullup(t *testing.T) {
	data := make([]byte, 200)
	got := allocs(t, func() {
		p := FromBytes(data)
		q := p.Split(10)
		p.Concat(q)
		p.Pullup(60)
		c := p.Clone()
		c.Release()
		p.Release()
	})
	if got != 0 {
		t.Errorf("Split+Concat+Pullup+Clone: %v allocations, want 0", got)
	}
}
