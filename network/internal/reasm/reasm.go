// Package reasm is the fragment reassembly core shared by the network
// protocols (layer: network, below ipv4 and ipv6, above proto). It owns the
// table of datagrams being reassembled, each an ordered list of disjoint
// fragments, the memory they hold and the timer that ends each one.
//
// It does not parse headers, decide which fragments are valid, send ICMP
// errors or keep counters: the protocol checks a fragment before Add, and
// learns of drops and timeouts through the callbacks in its Policy.
//
// Rules applied here, the same for IPv4 (RFC 791 §3.2, RFC 815, RFC 1122
// §3.3.2) and IPv6 (RFC 8200 §4.5):
//   - a fragment that repeats one held, byte range for byte range, is
//     dropped alone;
//   - any other overlap, two different ends or data past the end discards
//     the whole datagram; with Policy.Poison its entry stays, discarding
//     its later fragments too, until its timer runs out (RFC 5722 §4);
//   - a datagram is complete when its last fragment came and the data held
//     adds up to it; it is joined with buf.Packet.Concat;
//   - memory held (data bytes plus Policy.Overhead a fragment) is capped by
//     Policy.Memory; the oldest datagrams make room, and a fragment that
//     would need its own datagram evicted kills it.
package reasm

import (
	"sort"
	"sync"
	"time"

	"ustack/buf"
	"ustack/internal/clock"
	"ustack/proto"
)

// Policy is what a protocol tells a Table. Timeout, Memory and Drop must be
// set.
type Policy struct {
	// Timeout is how long a datagram may wait for its fragments; read
	// when a datagram starts.
	Timeout func() time.Duration
	// Memory is the cap on bytes held; read on every fragment.
	Memory func() int
	// Overhead is charged against Memory for each fragment held beyond its
	// data bytes.
	Overhead int
	// Poison keeps a datagram discarded for an overlap until its timer
	// runs out, its later fragments dropped as overlaps (RFC 5722 §4);
	// PoisonCost is what such an entry counts against Memory.
	Poison     bool
	PoisonCost int
	// Drop counts one packet the table dropped, for reason. It is called
	// with the table's lock held and must not call back into the table.
	Drop func(proto.DropReason)
	// Expired, if set, is called (without the lock) when a datagram whose
	// first fragment came times out, with the interface index given to
	// Add and that fragment, whose drop is already counted. It takes
	// ownership of first.
	Expired func(ifIndex int, first *buf.Packet)
}

type fragment struct {
	off, end int // byte range [off, end)
	pkt      *buf.Packet
}

type datagram[K comparable, M any] struct {
	key      K
	frags    []fragment // sorted by off, disjoint
	size     int        // data bytes held
	cost     int        // what it counts against the memory cap
	total    int        // length once the last fragment came; -1 before
	first    *buf.Packet
	meta     M // given with the first fragment
	ifIndex  int
	timer    clock.Timer
	poisoned bool
	dead     bool
	// older and newer link the datagrams by arrival, for eviction.
	older, newer *datagram[K, M]
}

// Table holds the datagrams being reassembled, keyed by K. M is what the
// protocol keeps from a datagram's first fragment until it completes. A
// Table is safe for concurrent use.
type Table[K comparable, M any] struct {
	clk clock.Clock
	pol Policy

	mu   sync.Mutex
	m    map[K]*datagram[K, M]
	held int
	// oldest and newest are the ends of the arrival list.
	oldest, newest *datagram[K, M]
}

// New returns an empty table whose timers run on clk.
func New[K comparable, M any](clk clock.Clock, pol Policy) *Table[K, M] {
	return &Table[K, M]{clk: clk, pol: pol, m: make(map[K]*datagram[K, M])}
}

// Pending reports how many datagrams the table holds (poisoned ones too).
func (t *Table[K, M]) Pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

// Bytes reports the memory held, as counted against Policy.Memory.
func (t *Table[K, M]) Bytes() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.held
}

// Add files the fragment pkt, the bytes [off, off+pkt.Len()) of datagram
// key; more is false for the last fragment. meta is kept if off is 0.
// ifIndex is the receiving interface, handed to Policy.Expired. Add takes
// ownership of pkt. When the datagram is complete it returns the whole
// data as one packet (the offset-0 fragment's packet, with the others
// concatenated), the first fragment's meta and true; otherwise nil.
func (t *Table[K, M]) Add(key K, ifIndex, off int, more bool, pkt *buf.Packet, meta M) (*buf.Packet, M, bool) {
	var none M
	n := pkt.Len()
	end := off + n

	t.mu.Lock()
	d := t.m[key]
	if d == nil {
		d = &datagram[K, M]{key: key, total: -1, ifIndex: ifIndex, older: t.newest}
		t.m[key] = d
		if t.newest != nil {
			t.newest.newer = d
		} else {
			t.oldest = d
		}
		t.newest = d
		d.timer = t.clk.AfterFunc(t.pol.Timeout(), func() { t.expire(d) })
	}
	if d.poisoned {
		t.dropLocked(pkt, proto.DropFragOverlap) // RFC 5722 §4: "not yet received" ones too
		t.mu.Unlock()
		return nil, none, false
	}
	i := sort.Search(len(d.frags), func(i int) bool { return d.frags[i].off >= off })
	if i < len(d.frags) && d.frags[i].off == off && d.frags[i].end == end {
		t.dropLocked(pkt, proto.DropFragDuplicate) // exact duplicate: only this one goes
		t.mu.Unlock()
		return nil, none, false
	}
	if d.collides(i, off, end, more) {
		if t.pol.Poison {
			t.poisonLocked(d)
		} else {
			t.killLocked(d, proto.DropFragOverlap)
		}
		t.dropLocked(pkt, proto.DropFragOverlap)
		t.mu.Unlock()
		return nil, none, false
	}
	// Memory cap: evict the oldest datagrams to make room.
	cost := n + t.pol.Overhead
	for t.held+cost > t.pol.Memory() && t.oldest != nil {
		old := t.oldest
		t.killLocked(old, proto.DropFragMemory)
		if old == d {
			t.dropLocked(pkt, proto.DropFragMemory)
			t.mu.Unlock()
			return nil, none, false
		}
	}
	d.frags = append(d.frags, fragment{})
	copy(d.frags[i+1:], d.frags[i:])
	d.frags[i] = fragment{off: off, end: end, pkt: pkt}
	d.size += n
	d.cost += cost
	t.held += cost
	if !more {
		d.total = end
	}
	if off == 0 {
		d.first, d.meta = pkt, meta
	}
	if d.total < 0 || d.size != d.total || d.first == nil {
		t.mu.Unlock()
		return nil, none, false
	}
	// Complete: the fragments are disjoint and add up to total.
	t.removeLocked(d)
	t.mu.Unlock()
	d.timer.Stop()
	whole := d.frags[0].pkt
	for _, f := range d.frags[1:] {
		whole.Concat(f.pkt)
	}
	return whole, d.meta, true
}

// collides reports whether [off, end), to go at index i, overlaps a
// fragment held or contradicts the datagram's end.
func (d *datagram[K, M]) collides(i, off, end int, more bool) bool {
	if (i > 0 && d.frags[i-1].end > off) || (i < len(d.frags) && d.frags[i].off < end) {
		return true
	}
	if more {
		return d.total >= 0 && end > d.total
	}
	return (d.total >= 0 && d.total != end) || // two different ends
		(len(d.frags) > 0 && d.frags[len(d.frags)-1].end > end) // data past the end
}

// Discard drops the datagram with key, if one is held, counting each of its
// fragments under reason.
func (t *Table[K, M]) Discard(key K, reason proto.DropReason) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if d := t.m[key]; d != nil {
		t.killLocked(d, reason)
	}
}

// Close drops every datagram without counting.
func (t *Table[K, M]) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, d := range t.m {
		t.killLocked(d, proto.DropNone)
	}
}

// expire runs when a datagram's time is up: its fragments go, counted as
// timeouts, and the first, if it came, goes to Policy.Expired. A poisoned
// datagram goes quietly.
func (t *Table[K, M]) expire(d *datagram[K, M]) {
	t.mu.Lock()
	if d.dead {
		t.mu.Unlock()
		return
	}
	first := d.first
	d.first = nil
	if first != nil {
		// Keep the first fragment for Expired, release the rest.
		for i := range d.frags {
			if d.frags[i].pkt == first {
				d.frags[i].pkt = nil
			}
		}
	}
	t.killLocked(d, proto.DropFragTimeout)
	if first != nil {
		t.pol.Drop(proto.DropFragTimeout)
	}
	t.mu.Unlock()
	if first == nil {
		return
	}
	if t.pol.Expired != nil {
		t.pol.Expired(d.ifIndex, first)
	} else {
		first.Release()
	}
}

// poisonLocked discards a datagram's fragments for an overlap and keeps
// its entry (RFC 5722 §4).
func (t *Table[K, M]) poisonLocked(d *datagram[K, M]) {
	t.releaseLocked(d, proto.DropFragOverlap)
	t.held += t.pol.PoisonCost - d.cost
	d.poisoned, d.size, d.cost, d.first = true, 0, t.pol.PoisonCost, nil
	var none M
	d.meta = none
}

// killLocked forgets a datagram and releases its fragments, counting each
// under reason (none for DropNone).
func (t *Table[K, M]) killLocked(d *datagram[K, M], reason proto.DropReason) {
	t.removeLocked(d)
	if d.timer != nil {
		d.timer.Stop()
	}
	t.releaseLocked(d, reason)
}

func (t *Table[K, M]) releaseLocked(d *datagram[K, M], reason proto.DropReason) {
	for _, f := range d.frags {
		if f.pkt != nil {
			t.dropLocked(f.pkt, reason)
		}
	}
	d.frags = nil
}

// dropLocked releases pkt and counts it under reason unless DropNone.
func (t *Table[K, M]) dropLocked(pkt *buf.Packet, reason proto.DropReason) {
	pkt.Release()
	if reason != proto.DropNone {
		t.pol.Drop(reason)
	}
}

func (t *Table[K, M]) removeLocked(d *datagram[K, M]) {
	if d.dead {
		return
	}
	d.dead = true
	delete(t.m, d.key)
	t.held -= d.cost
	if d.older != nil {
		d.older.newer = d.newer
	} else {
		t.oldest = d.newer
	}
	if d.newer != nil {
		d.newer.older = d.older
	} else {
		t.newest = d.older
	}
	d.older, d.newer = nil, nil
}
