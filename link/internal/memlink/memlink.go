// Package memlink is code shared by the in-memory link drivers (link/pipe,
// link/loopback): the receive side of a link whose frames never leave the
// process.
//
// It sits in the link layer, under the drivers. A Queue owns one or more
// bounded FIFOs of frames (receive queues), the reader goroutine that
// drains each, and the attached dispatcher. It does not decide which
// frames a link carries (the driver passes that test to Push), name or
// describe the endpoint, or change a frame's bytes; it reads a frame's
// headers only to pick its queue when there are several (hash.go).
//
// Pipeline:
//
//	Push ──(fits?)──(flow hash, when queues > 1)──▶ receive queue i
//	(bounded; full or closed: drop) ──▶ reader goroutine i ──(batches of
//	≤ link.MaxBatch; prepare)──▶ Dispatcher
//
// Frames are delivered on the reader goroutines, never on the writer's, so
// a dispatcher may write into the link from DeliverBatch without
// re-entering itself. With several queues the dispatcher is called from
// several goroutines at once, one per queue; frames of one flow always
// take the same queue and so arrive in the order they were pushed.
package memlink

import (
	"sync"
	"sync/atomic"

	"ustack/buf"
	"ustack/internal/stats"
	"ustack/link"
)

// MaxQueues is the most receive queues a Queue has.
const MaxQueues = 64

// Config shapes a Queue.
type Config struct {
	// Len bounds each receive queue, in frames.
	Len int
	// Queues is the number of receive queues, each with its own reader
	// goroutine; 0 or 1 is one, more than MaxQueues is MaxQueues. With
	// more than one, frames are spread by flow (QueueOf) and the
	// dispatcher is called from that many goroutines at once.
	Queues int
	// Type is the framing of the frames, for the flow hash.
	Type link.Type
}

// Queue is the receive side of an in-memory link endpoint: one or more
// receive queues (rxq), each a bounded FIFO drained by its own reader
// goroutine. Its methods are safe for concurrent use.
type Queue struct {
	ep      link.Endpoint     // handed to the dispatcher
	stats   *link.Stats       // the receiving endpoint's counters
	prepare func(*buf.Packet) // readies a frame for delivery
	typ     link.Type

	disp   atomic.Pointer[dispatcher]
	closed atomic.Bool // set first thing by Close
	rxqs   []rxq
	done   chan struct{} // closed by Close
}

// rxq is one receive queue and its reader.
type rxq struct {
	// mu guards ring and closed.
	mu     sync.Mutex
	ring   ring
	closed bool

	notify  chan struct{} // wakes the reader; capacity 1
	exited  chan struct{} // closed when the reader returns
	packets stats.Counter // frames handed to the dispatcher

	// Keep each queue's lock and counter on cache lines of its own: the
	// queues are used from different cores.
	_ [64]byte
}

type dispatcher struct{ d link.Dispatcher }

// New returns an empty single queue of n frames for ep; see NewConfig.
func New(ep link.Endpoint, stats *link.Stats, n int, prepare func(*buf.Packet)) *Queue {
	return NewConfig(ep, stats, Config{Len: n}, prepare)
}

// NewConfig returns empty receive queues for ep and starts their reader
// goroutines, which run until Close. Each reader hands frames to the
// attached dispatcher as coming from ep, in batches of up to
// link.MaxBatch, after calling prepare on each; it counts them in stats
// (RxPackets and RxBytes; RxDrops for frames that arrive while detached or
// are still queued at Close).
func NewConfig(ep link.Endpoint, stats *link.Stats, cfg Config, prepare func(*buf.Packet)) *Queue {
	n := min(max(cfg.Queues, 1), MaxQueues)
	q := &Queue{
		ep:      ep,
		stats:   stats,
		prepare: prepare,
		typ:     cfg.Type,
		rxqs:    make([]rxq, n),
		done:    make(chan struct{}),
	}
	for i := range q.rxqs {
		r := &q.rxqs[i]
		r.ring = ring{buf: make([]*buf.Packet, cfg.Len)}
		r.notify = make(chan struct{}, 1)
		r.exited = make(chan struct{})
		go q.reader(r)
	}
	return q
}

// NumQueues is the number of receive queues.
func (q *Queue) NumQueues() int { return len(q.rxqs) }

// QueuePackets is the number of frames receive queue i has handed to the
// dispatcher.
func (q *Queue) QueuePackets(i int) uint64 { return q.rxqs[i].packets.Load() }

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

// Push queues the frames of pkts that fits accepts, each on the receive
// queue of its flow, and wakes the readers. It takes ownership of every
// packet in pkts (not of the slice) and returns how many it queued. It
// counts in tx, the writer's counters: TxErrors for frames fits refuses,
// TxDrops for frames that find their queue full or closed, TxPackets and
// TxBytes for the frames queued. It does not allocate.
func (q *Queue) Push(pkts []*buf.Packet, fits func(*buf.Packet) bool, tx *link.Stats) int {
	sent, bytes := 0, 0
	var woken uint64 // bit i: queue i needs waking
	var r *rxq       // the queue whose lock is held
	for _, p := range pkts {
		if !fits(p) {
			tx.TxErrors.Inc()
			p.Release()
			continue
		}
		i := 0
		if len(q.rxqs) > 1 {
			i = queueOf(p, q.typ, len(q.rxqs))
		}
		// Frames of one write usually belong to one flow: the lock
		// changes hands only when the queue does.
		if next := &q.rxqs[i]; next != r {
			if r != nil {
				r.mu.Unlock()
			}
			r = next
			r.mu.Lock()
		}
		wasEmpty := r.ring.size == 0
		if r.closed || !r.ring.push(p) {
			tx.TxDrops.Inc()
			p.Release()
			continue
		}
		sent++
		bytes += p.Len()
		if wasEmpty {
			// A reader drains its queue until it finds it empty (under
			// mu), so only the frame that ends an empty spell needs to
			// wake it.
			woken |= 1 << i
		}
	}
	if r != nil {
		r.mu.Unlock()
	}
	if sent > 0 {
		tx.TxPackets.Add(uint64(sent))
		tx.TxBytes.Add(uint64(bytes))
	}
	for i := 0; woken != 0; i++ {
		if woken&(1<<i) == 0 {
			continue
		}
		woken &^= 1 << i
		select {
		case q.rxqs[i].notify <- struct{}{}:
		default:
		}
	}
	return sent
}

// Closed reports whether Close has been called.
func (q *Queue) Closed() bool { return q.closed.Load() }

// Close detaches, stops the readers, drops what is queued and waits until
// no batch is being delivered. Closing twice returns link.ErrClosed. It
// must not be called from the dispatcher (it would wait for itself).
func (q *Queue) Close() error {
	if q.closed.Swap(true) {
		return link.ErrClosed
	}
	for i := range q.rxqs {
		r := &q.rxqs[i]
		r.mu.Lock()
		r.closed = true
		r.mu.Unlock()
	}
	q.disp.Store(nil)
	close(q.done)
	for i := range q.rxqs {
		<-q.rxqs[i].exited
	}
	return nil
}

// pop moves up to link.MaxBatch frames from r into dst.
func (r *rxq) pop(dst []*buf.Packet) []*buf.Packet {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ring.pop(dst, link.MaxBatch)
}

// reader moves frames from r to the dispatcher, a batch at a time, until
// Close; then it drops what is left.
func (q *Queue) reader(r *rxq) {
	defer close(r.exited)
	batch := make([]*buf.Packet, 0, link.MaxBatch)
	for {
		stop := false
		select {
		case <-r.notify:
		case <-q.done:
			stop = true
		}
		for {
			batch = r.pop(batch[:0])
			if len(batch) == 0 {
				break
			}
			if stop {
				q.stats.RxDrops.Add(uint64(len(batch)))
				link.ReleaseAll(batch, 0)
			} else {
				q.deliver(r, batch)
			}
			clear(batch)
		}
		if stop {
			return
		}
	}
}

// deliver hands batch to the dispatcher, or drops it when detached.
func (q *Queue) deliver(r *rxq, batch []*buf.Packet) {
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
	r.packets.Add(uint64(len(batch)))
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
