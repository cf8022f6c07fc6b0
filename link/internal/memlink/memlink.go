// Package memlink is code shared by the in-memory link drivers (link/pipe,
// link/loopback): the receive side of a link whose frames never leave the
// process.
//
// It sits in the link layer, under the drivers. A Queue owns a bounded FIFO
// of frames, the reader goroutine that drains it and the attached
// dispatcher. It does not decide which frames a link carries (the driver
// passes that test to Push), name or describe the endpoint, or touch a
// frame's bytes.
//
// Pipeline:
//
//	Push ──(fits?)──▶ queue (bounded; full or closed: drop) ──▶
//	reader goroutine ──(batches of ≤ link.MaxBatch; prepare)──▶ Dispatcher
//
// Frames are delivered on the reader goroutine, never on the writer's, so a
// dispatcher may write into the link from DeliverBatch without re-entering
// itself.
package memlink

import (
	"sync"
	"sync/atomic"

	"ustack/buf"
	"ustack/link"
)

// Queue is the receive side of an in-memory link endpoint. Its methods are
// safe for concurrent use.
type Queue struct {
	ep      link.Endpoint     // handed to the dispatcher
	stats   *link.Stats       // the receiving endpoint's counters
	prepare func(*buf.Packet) // readies a frame for delivery

	disp atomic.Pointer[dispatcher]

	// mu guards ring and closed.
	mu     sync.Mutex
	ring   ring
	closed bool

	notify chan struct{} // wakes the reader; capacity 1
	done   chan struct{} // closed by Close
	exited chan struct{} // closed when the reader returns
}

type dispatcher struct{ d link.Dispatcher }

// New returns an empty queue of n frames for ep and starts its reader
// goroutine, which runs until Close. The reader hands frames to the
// attached dispatcher as coming from ep, in batches of up to
// link.MaxBatch, after calling prepare on each; it counts them in stats
// (RxPackets and RxBytes; RxDrops for frames that arrive while detached or
// are still queued at Close).
func New(ep link.Endpoint, stats *link.Stats, n int, prepare func(*buf.Packet)) *Queue {
	q := &Queue{
		ep:      ep,
		stats:   stats,
		prepare: prepare,
		ring:    ring{buf: make([]*buf.Packet, n)},
		notify:  make(chan struct{}, 1),
		done:    make(chan struct{}),
		exited:  make(chan struct{}),
	}
	go q.reader()
	return q
}

// Attach makes d receive the queued frames; nil detaches (frames are then
// dropped). It does not wait for a batch being delivered to the previous
// dispatcher; Close does.
func (q *Queue) Attach(d link.Dispatcher) {
	if d == nil {
		q.disp.Store(nil)
		return
	}
	q.disp.Store(&dispatcher{d})
}

// Push queues the frames of pkts that fits accepts and wakes the reader.
// It takes ownership of every packet in pkts (not of the slice) and
// returns how many it queued. It counts in tx, the writer's counters:
// TxErrors for frames fits refuses, TxDrops for frames that find the queue
// full or closed, TxPackets and TxBytes for the frames queued.
func (q *Queue) Push(pkts []*buf.Packet, fits func(*buf.Packet) bool, tx *link.Stats) int {
	sent, bytes := 0, 0
	q.mu.Lock()
	for _, p := range pkts {
		switch {
		case !fits(p):
			tx.TxErrors.Inc()
			p.Release()
		case q.closed || !q.ring.push(p):
			tx.TxDrops.Inc()
			p.Release()
		default:
			sent++
			bytes += p.Len()
		}
	}
	q.mu.Unlock()
	if sent > 0 {
		tx.TxPackets.Add(uint64(sent))
		tx.TxBytes.Add(uint64(bytes))
		select {
		case q.notify <- struct{}{}:
		default:
		}
	}
	return sent
}

// Closed reports whether Close has been called.
func (q *Queue) Closed() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closed
}

// Close detaches, stops the reader, drops what is queued and waits until no
// batch is being delivered. Closing twice returns link.ErrClosed. It must
// not be called from the dispatcher (it would wait for itself).
func (q *Queue) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return link.ErrClosed
	}
	q.closed = true
	q.mu.Unlock()
	q.disp.Store(nil)
	close(q.done)
	<-q.exited
	return nil
}

// pop moves up to link.MaxBatch frames from the queue into dst.
func (q *Queue) pop(dst []*buf.Packet) []*buf.Packet {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.ring.pop(dst, link.MaxBatch)
}

// reader moves frames from the queue to the dispatcher, a batch at a time,
// until Close; then it drops what is left.
func (q *Queue) reader() {
	defer close(q.exited)
	batch := make([]*buf.Packet, 0, link.MaxBatch)
	for {
		stop := false
		select {
		case <-q.notify:
		case <-q.done:
			stop = true
		}
		for {
			batch = q.pop(batch[:0])
			if len(batch) == 0 {
				break
			}
			if stop {
				q.stats.RxDrops.Add(uint64(len(batch)))
				link.ReleaseAll(batch, 0)
			} else {
				q.deliver(batch)
			}
			clear(batch)
		}
		if stop {
			return
		}
	}
}

// deliver hands batch to the dispatcher, or drops it when detached.
func (q *Queue) deliver(batch []*buf.Packet) {
	d := q.disp.Load()
	if d == nil {
		q.stats.RxDrops.Add(uint64(len(batch)))
		link.ReleaseAll(batch, 0)
		return
	}
	n := 0
	for _, p := range batch {
		n += p.Len()
		q.prepare(p)
	}
	q.stats.RxPackets.Add(uint64(len(batch)))
	q.stats.RxBytes.Add(uint64(n))
	d.d.DeliverBatch(q.ep, batch)
}

// ring is a bounded FIFO of frames.
type ring struct {
	buf        []*buf.Packet
	head, size int
}

func (r *ring) push(p *buf.Packet) bool {
	if r.size == len(r.buf) {
		return false
	}
	r.buf[(r.head+r.size)%len(r.buf)] = p
	r.size++
	return true
}

// pop appends up to max frames to dst.
func (r *ring) pop(dst []*buf.Packet, max int) []*buf.Packet {
	for r.size > 0 && len(dst) < max {
		dst = append(dst, r.buf[r.head])
		r.buf[r.head] = nil
		r.head = (r.head + 1) % len(r.buf)
		r.size--
	}
	return dst
}
