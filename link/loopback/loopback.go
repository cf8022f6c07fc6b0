// Package loopback is the loopback link: what a stack writes on it comes back
// to the same stack, as on a BSD lo0.
//
// It sits in the link layer. It owns one bounded queue and one reader
// goroutine (link/internal/memlink), or several with NewQueues. It carries
// bare IP packets (link.TypeIP), has no hardware address and looks inside
// packets only to spread flows over several queues.
//
// Pipeline:
//
//	WriteBatch ──(length check)──(flow hash, if several queues)──▶
//	queue i (bounded; full: drop) ──▶ reader goroutine i ──(batches of
//	≤ link.MaxBatch)──▶ Dispatcher
//
// The packets come back on a reader goroutine, never on the writer's, so
// the stack can send on loopback from inside its own receive path.
package loopback

import (
	"ustack/buf"
	"ustack/link"
	"ustack/link/internal/memlink"
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
	q     *memlink.Queue // of capacity queueLen
}

// New returns a loopback endpoint with the given MTU (DefaultMTU if mtu <=
// 0) and starts its reader goroutine, which runs until Close.
func New(mtu int) *Endpoint { return NewQueues(mtu, 1) }

// NewQueues is New with the given number of receive queues (at most 64),
// each with its own reader goroutine, so that loopback flows are carried
// up the stack on several cores at once. Packets are spread by a
// symmetric hash of their addresses and ports (link/pipe.QueueOf), so the
// two directions of a connection, and each flow's order, keep to one
// queue; packets of other protocols hash by address. With more than one
// queue the Dispatcher is called from that many goroutines at once.
func NewQueues(mtu, queues int) *Endpoint {
	if mtu <= 0 {
		mtu = DefaultMTU
	}
	e := &Endpoint{mtu: mtu}
	e.q = memlink.NewConfig(e, &e.stats, memlink.Config{Len: queueLen, Queues: queues, Type: link.TypeIP}, prepare)
	return e
}

// NumRxQueues is the number of receive queues.
func (e *Endpoint) NumRxQueues() int { return e.q.NumQueues() }

// RxQueuePackets is the number of packets receive queue i has delivered.
// It panics if i is out of range.
func (e *Endpoint) RxQueuePackets(i int) uint64 { return e.q.QueuePackets(i) }

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
func (e *Endpoint) Attach(d link.Dispatcher) { e.q.Attach(d) }

// WriteBatch queues the packets to come back to the dispatcher. It takes
// ownership of every packet in pkts and returns how many were queued.
// Empty packets and packets longer than the MTU are dropped and counted in
// TxErrors; packets that find the queue full (or closed by a Close racing
// with this write) are dropped and counted in TxDrops. It fails with
// link.ErrClosed after Close.
func (e *Endpoint) WriteBatch(pkts []*buf.Packet) (int, error) {
	if e.q.Closed() {
		link.ReleaseAll(pkts, 0)
		return 0, link.ErrClosed
	}
	return e.q.Push(pkts, e.fits, &e.stats), nil
}

func (e *Endpoint) fits(p *buf.Packet) bool { return p.Len() > 0 && p.Len() <= e.mtu }

// Close stops the reader, drops what is queued and waits until no batch is
// being delivered. Closing twice returns link.ErrClosed. It must not be
// called from the endpoint's own Dispatcher (it would wait for itself).
func (e *Endpoint) Close() error { return e.q.Close() }

// prepare makes a packet look freshly received: no interface or headers
// from its way down, and marked as looped back.
func prepare(p *buf.Packet) {
	p.IfIndex = 0
	p.LinkHeader, p.NetworkHeader, p.TransportHeader = nil, nil, nil
	p.Flags = buf.FlagLoopback
}
