package reasm

import (
	"bytes"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"ustack/buf"
	"ustack/internal/clock"
	"ustack/proto"
)

const timeout = 30 * time.Second

// step is one fragment of datagram key ([off, off+n), more fragments to
// follow unless !more), or, with wait set, time passing.
type step struct {
	key     int
	off, n  int
	more    bool
	wait    time.Duration
	wantOut int // length of the datagram this step completes; 0 for none
}

func frag(key, off, n int, more bool) step { return step{key: key, off: off, n: n, more: more} }

// data is the datagram's byte at each offset, so a wrong join shows.
func data(off, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(off + i)
	}
	return b
}

type harness struct {
	t       *testing.T
	clk     *clock.Fake
	tab     *Table[int, string]
	mu      sync.Mutex
	drops   map[proto.DropReason]int
	expired []string // "ifindex:first fragment length"
}

func newHarness(t *testing.T, pol Policy) *harness {
	h := &harness{t: t, clk: clock.NewFake(time.Unix(0, 0)), drops: map[proto.DropReason]int{}}
	pol.Timeout = func() time.Duration { return timeout }
	pol.Drop = func(r proto.DropReason) { h.drops[r]++ } // called under the table's lock
	pol.Expired = func(ifIndex int, first *buf.Packet) {
		h.mu.Lock()
		h.expired = append(h.expired, fmt.Sprintf("%d:%d", ifIndex, first.Len()))
		h.mu.Unlock()
		first.Release()
	}
	h.tab = New[int, string](h.clk, pol)
	return h
}

func (h *harness) run(steps []step) {
	h.t.Helper()
	for i, s := range steps {
		if s.wait != 0 {
			h.clk.Advance(s.wait)
			continue
		}
		meta := fmt.Sprintf("first of %d", s.key)
		whole, got, ok := h.tab.Add(s.key, 7, s.off, s.more, buf.FromBytes(data(s.off, s.n)), meta)
		switch {
		case ok != (s.wantOut != 0):
			h.t.Fatalf("step %d %+v: complete %v, want %v", i, s, ok, s.wantOut != 0)
		case !ok:
			if whole != nil || got != "" {
				h.t.Fatalf("step %d: incomplete datagram returned %v, %q", i, whole, got)
			}
		default:
			if b := whole.ToBytes(); !bytes.Equal(b, data(0, s.wantOut)) {
				h.t.Errorf("step %d: datagram\n%x, want\n%x", i, b, data(0, s.wantOut))
			}
			if got != meta {
				h.t.Errorf("step %d: meta %q, want %q", i, got, meta)
			}
			whole.Release()
		}
	}
}

func TestTable(t *testing.T) {
	ipv4 := Policy{Memory: func() int { return 1 << 20 }}
	ipv6 := Policy{Memory: func() int { return 1 << 20 }, Overhead: 100, Poison: true, PoisonCost: 10}
	small := func(p Policy, mem int) Policy { p.Memory = func() int { return mem }; return p }
	type drops = map[proto.DropReason]int
	for _, tc := range []struct {
		name        string
		pol         Policy
		steps       []step
		drops       drops
		pending     int
		bytes       int
		expired     []string
		timersAfter int
	}{
		{
			name:  "in order",
			pol:   ipv4,
			steps: []step{frag(1, 0, 8, true), frag(1, 8, 8, true), {key: 1, off: 16, n: 5, wantOut: 21}},
		},
		{
			name:  "last first, reversed",
			pol:   ipv6,
			steps: []step{frag(1, 16, 5, false), frag(1, 8, 8, true), {key: 1, off: 0, n: 8, more: true, wantOut: 21}},
		},
		{
			name:  "datagrams apart by key",
			pol:   ipv4,
			steps: []step{frag(1, 0, 8, true), frag(2, 8, 4, false), {key: 2, off: 0, n: 8, more: true, wantOut: 12}},
			// Key 1 holds its 8 bytes.
			pending: 1, bytes: 8, timersAfter: 1,
		},
		{
			name:    "held bytes count the overhead",
			pol:     ipv6,
			steps:   []step{frag(1, 0, 8, true), frag(1, 16, 8, false)},
			pending: 1, bytes: 16 + 2*100, timersAfter: 1,
		},
		{
			name:  "exact duplicate dropped alone",
			pol:   ipv4,
			steps: []step{frag(1, 0, 8, true), frag(1, 0, 8, true), {key: 1, off: 8, n: 3, wantOut: 11}},
			drops: drops{proto.DropFragDuplicate: 1},
		},
		{
			name:  "exact duplicate dropped alone, poisoning policy",
			pol:   ipv6,
			steps: []step{frag(1, 8, 3, false), frag(1, 8, 3, false), {key: 1, off: 0, n: 8, more: true, wantOut: 11}},
			drops: drops{proto.DropFragDuplicate: 1},
		},
		{
			name:  "overlap kills the datagram",
			pol:   ipv4,
			steps: []step{frag(1, 0, 16, true), frag(1, 8, 16, true), frag(1, 16, 8, false)},
			// The held fragment and the overlapping one; the last starts afresh.
			drops: drops{proto.DropFragOverlap: 2}, pending: 1, bytes: 8, timersAfter: 1,
		},
		{
			name:  "overlap poisons the datagram",
			pol:   ipv6,
			steps: []step{frag(1, 0, 16, true), frag(1, 8, 16, true), frag(1, 16, 8, false), frag(1, 0, 16, true)},
			// Later fragments go too, the entry costing PoisonCost.
			drops: drops{proto.DropFragOverlap: 4}, pending: 1, bytes: 10, timersAfter: 1,
		},
		{
			name:  "poisoned datagram goes quietly at its timeout, then its key is new",
			pol:   ipv6,
			steps: []step{frag(1, 0, 16, true), frag(1, 0, 8, true), {wait: timeout}, frag(1, 8, 2, false), {key: 1, off: 0, n: 8, more: true, wantOut: 10}},
			drops: drops{proto.DropFragOverlap: 2},
		},
		{
			name:  "two different ends",
			pol:   ipv4,
			steps: []step{frag(1, 16, 8, false), frag(1, 8, 4, false)},
			drops: drops{proto.DropFragOverlap: 2},
		},
		{
			name:  "data past the end",
			pol:   ipv4,
			steps: []step{frag(1, 16, 8, true), frag(1, 8, 4, false)},
			drops: drops{proto.DropFragOverlap: 2},
		},
		{
			name:  "fragment past a known end",
			pol:   ipv4,
			steps: []step{frag(1, 8, 4, false), frag(1, 16, 8, true)},
			drops: drops{proto.DropFragOverlap: 2},
		},
		{
			name:    "timeout with the first fragment",
			pol:     ipv4,
			steps:   []step{frag(1, 0, 8, true), frag(1, 16, 8, false), {wait: timeout - time.Nanosecond}, frag(1, 8, 4, true), {wait: time.Nanosecond}},
			drops:   drops{proto.DropFragTimeout: 3}, // a later fragment does not restart the timer
			expired: []string{"7:8"},
		},
		{
			name:  "timeout without the first fragment sends nothing",
			pol:   ipv6,
			steps: []step{frag(1, 8, 8, true), frag(1, 16, 8, false), {wait: timeout}},
			drops: drops{proto.DropFragTimeout: 2},
		},
		{
			name:  "memory cap evicts the oldest",
			pol:   small(ipv4, 20),
			steps: []step{frag(1, 0, 8, true), frag(2, 0, 8, true), frag(3, 0, 8, true), {key: 2, off: 8, n: 1, wantOut: 9}},
			// 3 pushes 1 out; 2 then completes.
			drops: drops{proto.DropFragMemory: 1}, pending: 1, bytes: 8, timersAfter: 1,
		},
		{
			name: "memory cap: a datagram that is the oldest kills itself",
			pol:  small(ipv6, 250),
			// Each fragment costs 108; the third would need 1's room.
			steps: []step{frag(1, 0, 8, true), frag(1, 8, 8, true), frag(1, 16, 8, true)},
			drops: drops{proto.DropFragMemory: 3},
		},
		{
			name: "memory cap counts poisoned entries",
			pol:  small(ipv6, 120),
			// 1 is poisoned (10), 2's fragment (108) fits beside it; 3's
			// needs both gone, 1 going quietly.
			steps: []step{frag(1, 0, 8, true), frag(1, 0, 4, true), frag(2, 0, 8, true), frag(3, 0, 8, true)},
			drops: drops{proto.DropFragOverlap: 2, proto.DropFragMemory: 1}, pending: 1, bytes: 108, timersAfter: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.pol)
			h.run(tc.steps)
			if tc.drops == nil {
				tc.drops = drops{}
			}
			if !maps.Equal(h.drops, tc.drops) {
				t.Errorf("drops %v, want %v", h.drops, tc.drops)
			}
			if got := h.tab.Pending(); got != tc.pending {
				t.Errorf("pending %d, want %d", got, tc.pending)
			}
			if got := h.tab.Bytes(); got != tc.bytes {
				t.Errorf("bytes %d, want %d", got, tc.bytes)
			}
			if got := h.clk.Pending(); got != tc.timersAfter {
				t.Errorf("timers %d, want %d", got, tc.timersAfter)
			}
			if fmt.Sprint(h.expired) != fmt.Sprint(tc.expired) {
				t.Errorf("expired %v, want %v", h.expired, tc.expired)
			}
			// Close releases what is left without counting it.
			before := maps.Clone(h.drops)
			h.tab.Close()
			if h.tab.Pending() != 0 || h.tab.Bytes() != 0 || h.clk.Pending() != 0 || !maps.Equal(h.drops, before) {
				t.Errorf("after close: %d datagrams, %d bytes, %d timers, drops %v", h.tab.Pending(), h.tab.Bytes(), h.clk.Pending(), h.drops)
			}
		})
	}
}

func TestDiscard(t *testing.T) {
	h := newHarness(t, Policy{Memory: func() int { return 1 << 20 }})
	h.run([]step{frag(1, 0, 8, true), frag(1, 16, 8, true), frag(2, 0, 8, true)})
	h.tab.Discard(1, proto.DropFragInvalid)
	h.tab.Discard(3, proto.DropFragInvalid) // none held: nothing happens
	if h.drops[proto.DropFragInvalid] != 2 || h.tab.Pending() != 1 || h.tab.Bytes() != 8 || h.clk.Pending() != 1 {
		t.Errorf("drops %v, pending %d, bytes %d, timers %d", h.drops, h.tab.Pending(), h.tab.Bytes(), h.clk.Pending())
	}
	h.clk.Advance(timeout)
	if fmt.Sprint(h.expired) != "[7:8]" {
		t.Errorf("expired %v, want only datagram 2's", h.expired)
	}
}

// TestConcurrent runs Add from several goroutines against expiring timers,
// for the race detector.
func TestConcurrent(t *testing.T) {
	h := newHarness(t, Policy{Memory: func() int { return 4096 }, Overhead: 64, Poison: true, PoisonCost: 16})
	h.tab.pol.Drop = func(proto.DropReason) {}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				key := (g*200 + i) % 37
				off := (i % 4) * 8
				whole, _, ok := h.tab.Add(key, g, off, i%4 != 3, buf.FromBytes(data(off, 8)), "")
				if ok {
					whole.Release()
				}
				if i%50 == 0 {
					h.clk.Advance(timeout / 2)
				}
			}
		})
	}
	wg.Wait()
	h.tab.Close()
	if h.tab.Pending() != 0 || h.tab.Bytes() != 0 {
		t.Errorf("after close: %d datagrams, %d bytes", h.tab.Pending(), h.tab.Bytes())
	}
}
