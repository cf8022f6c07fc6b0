package fault

import (
	"math/rand/v2"
	"sync"
	"time"

	"ustack/buf"
	"ustack/internal/clock"
	"ustack/link"
)

const (
	defaultReorderHold = 10 * time.Millisecond
	defaultLimit       = 1000
)

// dir is one direction through the decorator: ingress decides each frame's
// fate and due time; pump hands due frames to sink, from one goroutine at a
// time and in order.
type dir struct {
	im   Impairment
	clk  clock.Clock
	sink func([]*buf.Packet) int // takes ownership; returns how many it took in
	c    Counters

	// mu guards everything below.
	mu      sync.Mutex
	rng     *rand.Rand
	queue   []entry // FIFO, due times non-decreasing
	head    int
	lastDue time.Time

	// Rate limiter: GCRA form of a token bucket (ITU-T I.371 virtual
	// scheduling). tat is the theoretical arrival time; departs holds the
	// departure times still in the future (the limiter's queue).
	tat     time.Time
	departs []time.Time
	dhead   int

	held      *buf.Packet // a reordered frame waiting for the next one
	heldUntil time.Time

	pumping bool // a goroutine is in pump
	out     []*buf.Packet
	timer   clock.Timer
	armed   bool
	armedAt time.Time
	closed  bool
}

type entry struct {
	p       *buf.Packet
	due     time.Time
	reorder bool
}

func newDir(im Impairment, clk clock.Clock, seed, stream uint64, sink func([]*buf.Packet) int) *dir {
	if im.ReorderHold <= 0 {
		im.ReorderHold = defaultReorderHold
	}
	if im.Limit <= 0 {
		im.Limit = defaultLimit
	}
	return &dir{
		im:   im,
		clk:  clk,
		sink: sink,
		rng:  rand.New(rand.NewPCG(seed, stream)),
		out:  make([]*buf.Packet, 0, link.MaxBatch),
	}
}

func (d *dir) chance(p float64) bool { return p > 0 && d.rng.Float64() < p }

// ingress takes ownership of pkts, impairs them and queues what survives,
// then sends what is due.
func (d *dir) ingress(pkts []*buf.Packet) {
	d.mu.Lock()
	now := d.clk.Now() // under d.mu, so that now never goes back
	d.c.In.Add(uint64(len(pkts)))
	if d.closed {
		d.mu.Unlock()
		d.c.DroppedDetached.Add(uint64(len(pkts)))
		link.ReleaseAll(pkts, 0)
		return
	}
	for _, p := range pkts {
		if d.chance(d.im.Loss) {
			d.c.DroppedLoss.Inc()
			p.Release()
			continue
		}
		var dup *buf.Packet
		if d.chance(d.im.Duplicate) {
			// A private copy: a driver beneath may write into a frame
			// (completing a checksum), which shared storage forbids.
			dup = p.DeepCopy()
			d.c.Duplicated.Inc()
		}
		d.admit(p, now)
		if dup != nil {
			d.admit(dup, now)
		}
	}
	d.pumpLocked()
}

// admit passes one frame through corruption, the rate limiter and the delay
// stage and queues it. d.mu is held.
func (d *dir) admit(p *buf.Packet, now time.Time) {
	if d.chance(d.im.Corrupt) && p.Len() > 0 {
		q := p.DeepCopy()
		p.Release()
		bit := d.rng.IntN(q.Len() * 8)
		q.Bytes()[bit/8] ^= 1 << (bit % 8)
		q.Offload.CsumValid = false
		p = q
		d.c.Corrupted.Inc()
	}
	due := now
	if d.im.Rate > 0 {
		var ok bool
		if due, ok = d.shape(p.Len(), now); !ok {
			d.c.DroppedRate.Inc()
			p.Release()
			return
		}
	}
	delay := d.im.Delay
	if j := d.im.Jitter; j > 0 {
		delay += time.Duration(d.rng.Int64N(2*int64(j)+1)) - j
	}
	if delay > 0 {
		due = due.Add(delay)
	}
	if due.Before(d.lastDue) {
		due = d.lastDue // keep order: jitter does not reorder
	}
	d.lastDue = due
	if due.After(now) {
		d.c.Delayed.Inc()
	}
	d.queue = append(d.queue, entry{p: p, due: due, reorder: d.chance(d.im.Reorder)})
}

// shape returns when a frame of n bytes may leave the token bucket, or
// false if the limiter's queue is full. A bucket of Burst bytes holds
// tokens for a frame of n bytes when its debt is at most (Burst-n)/Rate.
func (d *dir) shape(n int, now time.Time) (time.Time, bool) {
	for d.dhead < len(d.departs) && !d.departs[d.dhead].After(now) {
		d.dhead++
	}
	if d.dhead == len(d.departs) {
		d.departs, d.dhead = d.departs[:0], 0
	} else if d.dhead >= d.im.Limit {
		n := copy(d.departs, d.departs[d.dhead:])
		d.departs, d.dhead = d.departs[:n], 0
	}
	if len(d.departs)-d.dhead >= d.im.Limit {
		return time.Time{}, false
	}
	cost := bitsTime(uint64(n), d.im.Rate)
	tol := time.Duration(0)
	if d.im.Burst > n {
		tol = bitsTime(uint64(d.im.Burst-n), d.im.Rate)
	}
	depart := now
	if t := d.tat.Add(-tol); t.After(depart) {
		depart = t
	}
	if d.tat.Before(depart) {
		d.tat = depart
	}
	d.tat = d.tat.Add(cost)
	if depart.After(now) {
		d.departs = append(d.departs, depart)
	}
	return depart, true
}

// bitsTime is how long n bytes take at rate bits per second.
func bitsTime(n, rate uint64) time.Duration {
	return time.Duration(n * 8 * uint64(time.Second) / rate)
}

// pump sends the frames that are due.
func (d *dir) pump() {
	d.mu.Lock()
	d.pumpLocked()
}

// pumpLocked is pump with d.mu held; it returns with d.mu released. Only
// one goroutine pumps at a time: another that finds frames due leaves them
// to it, so the sink sees one caller at a time, in order, and a sink that
// re-enters the decorator does not deadlock.
func (d *dir) pumpLocked() {
	if d.pumping {
		d.mu.Unlock()
		return
	}
	d.pumping = true
	for {
		now := d.clk.Now()
		d.out = d.popDue(now, d.out[:0])
		if len(d.out) == 0 {
			d.arm(now)
			d.pumping = false
			d.mu.Unlock()
			return
		}
		batch := d.out
		d.mu.Unlock()
		d.c.Out.Add(uint64(d.sink(batch)))
		clear(batch)
		d.mu.Lock()
	}
}

// popDue appends the frames due by now to dst, holding back and releasing
// reordered ones.
func (d *dir) popDue(now time.Time, dst []*buf.Packet) []*buf.Packet {
	for len(dst) < link.MaxBatch-1 {
		if d.held != nil && !d.heldUntil.After(now) {
			// Nothing came after it in time: it leaves late, but in order.
			dst = append(dst, d.held)
			d.held = nil
			continue
		}
		if d.head == len(d.queue) || d.queue[d.head].due.After(now) {
			break
		}
		e := d.queue[d.head]
		d.queue[d.head] = entry{}
		d.head++
		if e.reorder && d.held == nil {
			d.held, d.heldUntil = e.p, e.due.Add(d.im.ReorderHold)
			continue
		}
		dst = append(dst, e.p)
		if d.held != nil {
			dst = append(dst, d.held)
			d.held = nil
			d.c.Reordered.Inc()
		}
	}
	if d.head == len(d.queue) {
		d.queue, d.head = d.queue[:0], 0
	} else if d.head > 1024 && d.head*2 > len(d.queue) {
		n := copy(d.queue, d.queue[d.head:])
		clear(d.queue[n:])
		d.queue, d.head = d.queue[:n], 0
	}
	return dst
}

// arm sets the timer for the next frame to fall due.
func (d *dir) arm(now time.Time) {
	if d.closed {
		return
	}
	var next time.Time
	switch {
	case d.head < len(d.queue):
		next = d.queue[d.head].due
		if d.held != nil && d.heldUntil.Before(next) {
			next = d.heldUntil
		}
	case d.held != nil:
		next = d.heldUntil
	default:
		return
	}
	if d.armed && d.armedAt.Equal(next) {
		return
	}
	d.armed, d.armedAt = true, next
	if d.timer == nil {
		d.timer = d.clk.AfterFunc(next.Sub(now), d.fire)
	} else {
		d.timer.Reset(next.Sub(now))
	}
}

func (d *dir) fire() {
	d.mu.Lock()
	d.armed = false
	d.pumpLocked()
}

// close drops everything waiting and stops the timer; frames arriving later
// are dropped.
func (d *dir) close() {
	d.mu.Lock()
	d.closed = true
	if d.timer != nil {
		d.timer.Stop()
	}
	var drop []*buf.Packet
	for _, e := range d.queue[d.head:] {
		drop = append(drop, e.p)
	}
	if d.held != nil {
		drop = append(drop, d.held)
		d.held = nil
	}
	clear(d.queue)
	d.queue, d.head = nil, 0
	d.mu.Unlock()
	d.c.DroppedDetached.Add(uint64(len(drop)))
	link.ReleaseAll(drop, 0)
}
