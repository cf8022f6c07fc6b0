// Package pipe is an in-memory link: two connected link.Endpoints, like a
// veth pair, for tests and in-process topologies.
//
// It sits in the link layer. It owns the two endpoints, a bounded receive
// queue per side and one reader goroutine per side. It does not parse
// frames (beyond the length check an Ethernet or IP device does), segment
// large packets, complete checksums or impair traffic (wrap an endpoint in
// link/fault for that).
//
// Pipeline, for each direction:
//
//	a.WriteBatch ──(length check)──▶ b's queue (bounded; full: drop) ──▶
//	b's reader goroutine ──(batches of ≤ link.MaxBatch)──▶ b's Dispatcher
//
// A receive never runs on the sender's goroutine, so a dispatcher may write
// back into the pipe from DeliverBatch without re-entering itself.
package pipe

import (
	"fmt"
	"sync"
	"sync/atomic"

	"ustack/buf"
	"ustack/link"
	"ustack/wire"
)

// Config configures a pipe. The zero value is a 1500-byte Ethernet pipe.
type Config struct {
	// Type is the framing: link.TypeEthernet (default) or link.TypeIP.
	Type link.Type
	// MTU is the largest network-layer packet; default 1500.
	MTU int
	// Name is the base name; the endpoints are Name+"a" and Name+"b".
	// Default "pipe<seed>".
	Name string
	// MACA and MACB are the sides' hardware addresses on Ethernet pipes.
	// A zero address is replaced by a locally administered one made from
	// Seed: 02:00:s2:s1:s0:0a for side a and ...:0b for side b, where
	// s2..s0 are the low 24 bits of the seed.
	MACA, MACB wire.MAC
	// Seed makes the generated MACs and name. Zero takes the next value of
	// a process-wide counter, so pipes made with defaults differ.
	Seed uint32
	// QueueLen bounds each side's receive queue, in frames; default 512.
	// A frame written while the peer's queue is full is dropped and
	// counted in the writer's TxDrops.
	QueueLen int
	// Offloads are the offload capabilities both sides advertise
	// (CapTxChecksum, CapRxChecksum, CapTSO4, CapTSO6, CapUSO, CapRxGSO;
	// others are ignored). The pipe carries buf.Offload across unchanged,
	// as a veth pair does, so a partial checksum or a large segment written
	// on one side arrives as such on the other. With none, Offload is
	// cleared in transit.
	Offloads link.Capabilities
}

const (
	defaultMTU      = 1500
	defaultQueueLen = 512
	offloadCaps     = link.CapTxChecksum | link.CapRxChecksum | link.CapTSO4 |
		link.CapTSO6 | link.CapUSO | link.CapRxGSO
)

// seeds hands out the seeds of pipes configured without one. It is the
// package's only state: a counter, so that default pipes get distinct MACs.
var seeds atomic.Uint32

// Endpoint is one side of a pipe. It implements link.Endpoint and
// link.Counted.
type Endpoint struct {
	name  string
	typ   link.Type
	mtu   int
	mac   wire.MAC
	caps  link.Capabilities
	peer  *Endpoint
	stats link.Stats

	disp atomic.Pointer[dispatcher]

	// mu guards the receive queue and closed.
	mu     sync.Mutex
	queue  ring
	closed bool

	notify chan struct{} // wakes the reader; capacity 1
	done   chan struct{} // closed by Close
	exited chan struct{} // closed when the reader returns
}

type dispatcher struct{ d link.Dispatcher }

// New returns the two connected sides of a new pipe. Each has a reader
// goroutine running until it is closed.
func New(cfg Config) (a, b *Endpoint) {
	if cfg.MTU <= 0 {
		cfg.MTU = defaultMTU
	}
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = defaultQueueLen
	}
	if cfg.Seed == 0 {
		cfg.Seed = seeds.Add(1)
	}
	if cfg.Name == "" {
		cfg.Name = fmt.Sprintf("pipe%d", cfg.Seed)
	}
	if cfg.Type == link.TypeEthernet {
		if cfg.MACA.IsZero() {
			cfg.MACA = genMAC(cfg.Seed, 0x0a)
		}
		if cfg.MACB.IsZero() {
			cfg.MACB = genMAC(cfg.Seed, 0x0b)
		}
	} else {
		cfg.MACA, cfg.MACB = wire.MAC{}, wire.MAC{}
	}
	a = newEndpoint(cfg, cfg.Name+"a", cfg.MACA)
	b = newEndpoint(cfg, cfg.Name+"b", cfg.MACB)
	a.peer, b.peer = b, a
	go a.reader()
	go b.reader()
	return a, b
}

func genMAC(seed uint32, side byte) wire.MAC {
	// Locally administered, individual (IEEE 802-2014 §8.2.2).
	return wire.MAC{0x02, 0x00, byte(seed >> 16), byte(seed >> 8), byte(seed), side}
}

func newEndpoint(cfg Config, name string, mac wire.MAC) *Endpoint {
	return &Endpoint{
		name:   name,
		typ:    cfg.Type,
		mtu:    cfg.MTU,
		mac:    mac,
		caps:   cfg.Offloads & offloadCaps,
		queue:  newRing(cfg.QueueLen),
		notify: make(chan struct{}, 1),
		done:   make(chan struct{}),
		exited: make(chan struct{}),
	}
}

// Name returns the endpoint's name.
func (e *Endpoint) Name() string { return e.name }

// Type returns the framing.
func (e *Endpoint) Type() link.Type { return e.typ }

// MTU returns the MTU.
func (e *Endpoint) MTU() int { return e.mtu }

// HardwareAddr returns the MAC address; zero on IP pipes.
func (e *Endpoint) HardwareAddr() wire.MAC { return e.mac }

// Capabilities returns the configured offloads.
func (e *Endpoint) Capabilities() link.Capabilities { return e.caps }

// HeaderRoom is 0: the pipe adds no header.
func (e *Endpoint) HeaderRoom() int { return 0 }

// LinkStats returns the endpoint's counters.
func (e *Endpoint) LinkStats() *link.Stats { return &e.stats }

// Peer returns the other side.
func (e *Endpoint) Peer() *Endpoint { return e.peer }

// Attach makes d receive the frames written on the other side; nil
// detaches. It does not wait for a batch being delivered to the previous
// dispatcher; Close does.
func (e *Endpoint) Attach(d link.Dispatcher) {
	if d == nil {
		e.disp.Store(nil)
		return
	}
	e.disp.Store(&dispatcher{d})
}

// WriteBatch sends the frames to the other side's queue. It takes ownership
// of every packet in pkts and returns how many were queued. Frames shorter
// than a link header or longer than MTU plus link header (unless they are
// large segments the configured offloads allow) are dropped and counted in
// TxErrors; frames that find the peer's queue full or the peer closed are
// dropped and counted in TxDrops. Neither is an error. It fails with
// link.ErrClosed when e is closed.
func (e *Endpoint) WriteBatch(pkts []*buf.Packet) (int, error) {
	if e.isClosed() {
		link.ReleaseAll(pkts, 0)
		return 0, link.ErrClosed
	}
	peer := e.peer
	sent, bytes := 0, 0
	peer.mu.Lock()
	for _, p := range pkts {
		switch {
		case !e.fits(p):
			e.stats.TxErrors.Inc()
			p.Release()
		case peer.closed || !peer.queue.push(p):
			e.stats.TxDrops.Inc()
			p.Release()
		default:
			sent++
			bytes += p.Len()
		}
	}
	peer.mu.Unlock()
	if sent > 0 {
		e.stats.TxPackets.Add(uint64(sent))
		e.stats.TxBytes.Add(uint64(bytes))
		select {
		case peer.notify <- struct{}{}:
		default:
		}
	}
	return sent, nil
}

// fits reports whether p is a frame the link carries.
func (e *Endpoint) fits(p *buf.Packet) bool {
	n, hdr := p.Len(), 0
	if e.typ == link.TypeEthernet {
		hdr = wire.EthernetHeaderLen
		if n < hdr {
			return false
		}
		// Room for one 802.1Q tag (IEEE 802.1Q §9.3): the MTU is the
		// network layer's.
		if t := p.Pullup(hdr); wire.Ethernet(t).Type() == wire.EtherTypeVLAN {
			hdr += wire.VLANTagLen
		}
	} else if n == 0 {
		return false
	}
	if n <= e.mtu+hdr {
		return true
	}
	switch p.Offload.GSO {
	case buf.GSOTCPv4:
		return e.caps.Has(link.CapTSO4)
	case buf.GSOTCPv6:
		return e.caps.Has(link.CapTSO6)
	case buf.GSOUDPL4:
		return e.caps.Has(link.CapUSO)
	}
	return false
}

func (e *Endpoint) isClosed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closed
}

// Close stops the reader goroutine, drops what is queued and waits until no
// batch is being delivered. Writes on e fail from then on; writes from the
// peer are dropped. Closing twice returns link.ErrClosed. It must not be
// called from e's own Dispatcher (it would wait for itself).
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

// reader moves frames from the queue to the dispatcher, a batch at a time.
func (e *Endpoint) reader() {
	defer close(e.exited)
	batch := make([]*buf.Packet, 0, link.MaxBatch)
	for {
		select {
		case <-e.notify:
		case <-e.done:
			e.mu.Lock()
			for {
				batch = e.queue.pop(batch[:0], link.MaxBatch)
				if len(batch) == 0 {
					break
				}
				e.stats.RxDrops.Add(uint64(len(batch)))
				link.ReleaseAll(batch, 0)
			}
			e.mu.Unlock()
			return
		}
		for {
			e.mu.Lock()
			batch = e.queue.pop(batch[:0], link.MaxBatch)
			e.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			e.deliver(batch)
			clear(batch)
		}
	}
}

// deliver hands batch to the dispatcher, or drops it when detached.
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
		resetMeta(p, e.caps)
	}
	e.stats.RxPackets.Add(uint64(len(batch)))
	e.stats.RxBytes.Add(uint64(n))
	d.d.DeliverBatch(e, batch)
}

// resetMeta clears what the sending stack attached to p, so the receiving
// stack sees a frame fresh from a device.
func resetMeta(p *buf.Packet, caps link.Capabilities) {
	p.IfIndex = 0
	p.LinkHeader, p.NetworkHeader, p.TransportHeader = nil, nil, nil
	p.Flags = 0
	if caps&offloadCaps == 0 {
		p.Offload = buf.Offload{}
	}
}

// ring is a bounded FIFO of packets.
type ring struct {
	buf        []*buf.Packet
	head, size int
}

func newRing(n int) ring { return ring{buf: make([]*buf.Packet, n)} }

func (r *ring) push(p *buf.Packet) bool {
	if r.size == len(r.buf) {
		return false
	}
	r.buf[(r.head+r.size)%len(r.buf)] = p
	r.size++
	return true
}

// pop appends up to max packets to dst.
func (r *ring) pop(dst []*buf.Packet, max int) []*buf.Packet {
	for r.size > 0 && len(dst) < max {
		dst = append(dst, r.buf[r.head])
		r.buf[r.head] = nil
		r.head = (r.head + 1) % len(r.buf)
		r.size--
	}
	return dst
}
