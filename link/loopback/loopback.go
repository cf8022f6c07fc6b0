// Package loopback is the loopback link: what a stack writes on it comes back
// to the same stack, as on a BSD lo0.
//
// It sits in the link layer. It owns one bounded queue and one reader
// goroutine. It carries bare IP packets (link.TypeIP), has no hardware
// address and does not look inside packets.
//
// Pipeline:
//
//	WriteBatch ──(length check)──▶ queue (bounded; full: drop) ──▶
//	reader goroutine ──(batches of ≤ link.MaxBatch)──▶ Dispatcher
//
// The packets come back on the reader goroutine, never on the writer's, so
// the stack can send on loopback from inside its own receive path.
package loopback

import (
	"sync"
	"sync/atomic"

	"ustack/buf"
	"ustack/link"
	"ustack/wire"
)

const (
	// DefaultMTU is the MTU New uses when given 0 or less.
	DefaultMTU = 65536
	queueLen   = 1024
	// Checksums need not be computed for packets that never leave memory:
	// a partial checksum written comes back as one, and the receive side
	// accepts it as such.
	caps = link.CapLoopback | link.CapTxChecksum | link.CapRxChecksum
)

// Endpoint is a loopback device. It implements link.Endpoint and
// link.Counted.
type Endpoint struct {
	mtu   int
	stats link.Stats
	disp  atomic.Pointer[dispatcher]

	// mu guards queue, qlen and closed.
	mu     sync.Mutex
	queue  []*buf.Packet // FIFO ring of capacity queueLen
	head   int
	qlen   int
	closed bool

	notify chan struct{} // wakes the reader; capacity 1
	done   chan struct{} // closed by Close
	exited chan struct{} // closed when the reader returns
}

type dispatcher struct{ d link.Dispatcher }

// New returns a loopback endpoint with the given MTU (DefaultMTU if mtu <=
// 0) and starts its reader goroutine, which runs until Close.
func New(mtu int) *Endpoint {
	if mtu <= 0 {
		mtu = DefaultMTU
	}
	e := &Endpoint{
		mtu:    mtu,
		queue:  make([]*buf.Packet, queueLen),
		notify: make(chan struct{}, 1),
		done:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	go e.reader()
	return e
}

// Name is "lo".
func (e *Endpoint) Name() string { return "lo" }

// Type is link.TypeIP.
func (e *Endpoint) Type() link.Type { return link.TypeIP }

// MTU returns the MTU.
func (e *Endpoint) MTU() int { return e.mtu }

// HardwareAddr is zero: loopback has no link address.
func (e *Endpoint) HardwareAddr() wire.MAC { return wire.MAC{} }

// Capabilities are loopback and checksum offload.
func (e *Endpoint) Capabilities() link.Capabilities { return caps }

// HeaderRoom is 0.
func (e *Endpoint) HeaderRoom() int { return 0 }

// LinkStats returns the endpoint's counters.
func (e *Endpoint) LinkStats() *link.Stats { return &e.stats }

// Attach makes d receive what is written; nil detaches (packets written
// meanwhile are dropped). It does not wait for a batch being delivered to
// the previous dispatcher; Close does.
func (e *Endpoint) Attach(d link.Dispatcher) {
	if d == nil {
		e.disp.Store(nil)
		return
	}
	e.disp.Store(&dispatcher{d})
}

// WriteBatch queues the packets to come back to the dispatcher. It takes
// ownership of every packet in pkts and returns how many were queued.
// Empty packets and packets longer than the MTU are dropped and counted in
// TxErrors; packets that find the queue full are dropped and counted in
// TxDrops. It fails with link.ErrClosed after Close.
func (e *Endpoint) WriteBatch(pkts []*buf.Packet) (int, error) {
	sent, bytes := 0, 0
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		link.ReleaseAll(pkts, 0)
		return 0, link.ErrClosed
	}
	for _, p := range pkts {
		switch {
		case p.Len() == 0 || p.Len() > e.mtu:
			e.stats.TxErrors.Inc()
			p.Release()
		case e.qlen == len(e.queue):
			e.stats.TxDrops.Inc()
			p.Release()
		default:
			e.queue[(e.head+e.qlen)%len(e.queue)] = p
			e.qlen++
			sent++
			bytes += p.Len()
		}
	}
	e.mu.Unlock()
	if sent > 0 {
		e.stats.TxPackets.Add(uint64(sent))
		e.stats.TxBytes.Add(uint64(bytes))
		select {
		case e.notify <- struct{}{}:
		default:
		}
	}
	return sent, nil
}

// Close stops the reader, drops what is queued and waits until no batch is
// being delivered. Closing twice returns link.ErrClosed. It must not be
// called from the endpoint's own Dispatcher (it would wait for itself).
func (e *Endpoint) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return link.ErrClosed
	}
	e.closed = true
	e.mu.Unlock()
	e.disp.Store(nil)
	close(e.done)
	<-e.exited
	return nil
}

// pop moves up to link.MaxBatch packets from the queue into dst.
func (e *Endpoint) pop(dst []*buf.Packet) []*buf.Packet {
	e.mu.Lock()
	defer e.mu.Unlock()
	for e.qlen > 0 && len(dst) < link.MaxBatch {
		dst = append(dst, e.queue[e.head])
		e.queue[e.head] = nil
		e.head = (e.head + 1) % len(e.queue)
		e.qlen--
	}
	return dst
}

func (e *Endpoint) reader() {
	defer close(e.exited)
	batch := make([]*buf.Packet, 0, link.MaxBatch)
	for {
		stop := false
		select {
		case <-e.notify:
		case <-e.done:
			stop = true
		}
		for {
			batch = e.pop(batch[:0])
			if len(batch) == 0 {
				break
			}
			if stop {
				e.stats.RxDrops.Add(uint64(len(batch)))
				link.ReleaseAll(batch, 0)
			} else {
				e.deliver(batch)
			}
			clear(batch)
		}
		if stop {
			return
		}
	}
}

func (e *Endpoint) deliver(batch []*buf.Packet) {
	d := e.disp.Load()
	if d == nil {
		e.stats.RxDrops.Add(uint64(len(batch)))
		link.ReleaseAll(batch, 0)
		return
	}
	n := 0
	for _, p := range batch {
		n += p.Len()
		p.IfIndex = 0
		p.LinkHeader, p.NetworkHeader, p.TransportHeader = nil, nil, nil
		p.Flags = buf.FlagLoopback
	}
	e.stats.RxPackets.Add(uint64(len(batch)))
	e.stats.RxBytes.Add(uint64(n))
	d.d.DeliverBatch(e, batch)
}
