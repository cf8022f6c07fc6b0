// Package rxq is the receive queue of ustack's datagram endpoints (UDP,
// ICMP echo): code shared by the transport protocols, below them and above
// the network layer.
//
// A Queue owns the packets it holds: a FIFO of (packet, sender) bounded in
// bytes, the endpoint's pending asynchronous error (SO_ERROR), and the
// Readable channel that wakes a reader. It does not block, keep goroutines,
// know about deadlines or demultiplex: the protocol pushes what it
// delivers, the socket layer pops and waits on Readable.
//
// In steady state (a queue that has held as many packets before) Push and
// Pop allocate nothing.
package rxq

import (
	"sync"

	"ustack/buf"
)

// Queue is a bounded FIFO of received packets, each with its sender's
// address A, plus pending errors. Its methods are safe for concurrent use
// and never block. Make one with New.
type Queue[A any] struct {
	readable chan struct{} // capacity 1; never closed

	mu     sync.Mutex
	items  []item[A] // items[head:] is live
	head   int
	bytes  int     // packet bytes queued
	limit  int     // bound on bytes
	errs   []error // pending asynchronous errors, oldest first
	errCap int     // 1: one slot, a new error replaces the old (SO_ERROR)
	closed bool
}

type item[A any] struct {
	pkt  *buf.Packet
	from A
}

// New returns an empty queue bounded to limit bytes (at least 1).
func New[A any](limit int) *Queue[A] {
	return &Queue[A]{readable: make(chan struct{}, 1), limit: max(limit, 1), errCap: 1}
}

// SetErrQueue makes the queue keep up to n pending errors, oldest first, as
// an error queue does (IP_RECVERR): each TakeErr returns one, and when the
// queue is full the oldest goes. The default, 1, keeps only the latest
// (SO_ERROR).
func (q *Queue[A]) SetErrQueue(n int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.errCap = max(n, 1)
	if len(q.errs) > q.errCap {
		q.errs = append(q.errs[:0], q.errs[len(q.errs)-q.errCap:]...)
	}
}

// Readable returns a channel that receives a value whenever a packet or an
// error arrives, and on Close. It has a buffer of one and is never closed:
// one value may stand for several packets, so a reader drains Pop and
// checks TakeErr after each wake-up. Pop passes the wake-up on while
// packets remain, so that every waiting reader gets one.
func (q *Queue[A]) Readable() <-chan struct{} { return q.readable }

func (q *Queue[A]) signal() {
	select {
	case q.readable <- struct{}{}:
	default:
	}
}

// SetLimit bounds the queue to n bytes (at least 1). Packets already
// queued stay.
func (q *Queue[A]) SetLimit(n int) {
	q.mu.Lock()
	q.limit = max(n, 1)
	q.mu.Unlock()
}

// Bytes is how many packet bytes are queued.
func (q *Queue[A]) Bytes() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytes
}

// Push queues pkt from from and wakes a reader. It takes ownership of pkt
// and releases it when it refuses it: when the queue is closed or already
// holds at least its limit. A packet is accepted while the queue holds
// less than the limit, so the limit may be overshot by one packet, as
// Linux's socket receive buffer is. It reports whether pkt was queued.
func (q *Queue[A]) Push(pkt *buf.Packet, from A) bool {
	q.mu.Lock()
	if q.closed || q.bytes >= q.limit {
		q.mu.Unlock()
		pkt.Release()
		return false
	}
	if q.head > 0 && len(q.items) == cap(q.items) {
		// Full backing array with room in front: slide down, no growth.
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	q.items = append(q.items, item[A]{pkt, from})
	q.bytes += pkt.Len()
	q.mu.Unlock()
	q.signal()
	return true
}

// Pop takes the oldest packet without blocking. The caller owns pkt and
// must Release it. ok is false when the queue is empty.
func (q *Queue[A]) Pop() (pkt *buf.Packet, from A, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head == len(q.items) {
		return nil, from, false
	}
	it := q.items[q.head]
	q.items[q.head] = item[A]{}
	q.head++
	q.bytes -= it.pkt.Len()
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	} else {
		// More is queued: pass the wake-up on to the next reader.
		q.signal()
	}
	return it.pkt, it.from, true
}

// SetErr records an asynchronous error and wakes a reader. With the
// default single slot it replaces any pending error; with an error queue
// (SetErrQueue) it joins the end, dropping the oldest when full.
func (q *Queue[A]) SetErr(err error) {
	q.mu.Lock()
	if len(q.errs) >= q.errCap {
		n := copy(q.errs, q.errs[1:])
		q.errs = q.errs[:n]
	}
	q.errs = append(q.errs, err)
	q.mu.Unlock()
	q.signal()
}

// TakeErr returns and clears the oldest pending error (read-and-clear, as
// getsockopt SO_ERROR); nil when there is none. It passes the wake-up on
// while errors remain.
func (q *Queue[A]) TakeErr() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.errs) == 0 {
		return nil
	}
	err := q.errs[0]
	n := copy(q.errs, q.errs[1:])
	q.errs[n] = nil
	q.errs = q.errs[:n]
	if n > 0 {
		q.signal()
	}
	return err
}

// Close releases the queued packets, refuses later pushes and wakes a
// reader. A pending error stays for TakeErr. Closing twice does nothing.
func (q *Queue[A]) Close() {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	live := q.items[q.head:]
	q.items, q.head, q.bytes = nil, 0, 0
	q.closed = true
	q.mu.Unlock()
	for _, it := range live {
		it.pkt.Release()
	}
	q.signal()
}
