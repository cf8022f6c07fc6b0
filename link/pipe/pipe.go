// Package pipe is an in-memory link: two connected link.Endpoints, like a
// veth pair, for tests and in-process topologies.
//
// It sits in the link layer. It owns the two endpoints, each with one or
// more bounded receive queues and a reader goroutine per queue
// (link/internal/memlink). It
// does not parse frames (beyond the length check an Ethernet or IP device
// does), segment large packets, complete checksums or impair traffic (wrap
// an endpoint in link/fault for that).
//
// Pipeline, for each direction:
//
//	a.WriteBatch ──(length check)──(flow hash, Config.Queues > 1)──▶
//	b's receive queue i (bounded; full: drop) ──▶ b's reader goroutine i
//	──(batches of ≤ link.MaxBatch)──▶ b's Dispatcher
//
// A receive never runs on the sender's goroutine, so a dispatcher may write
// back into the pipe from DeliverBatch without re-entering itself. With
// several receive queues, b's Dispatcher runs on several goroutines at
// once; each flow keeps to one queue and so to its order.
package pipe

import (
	"fmt"
	"sync/atomic"

	"ustack/buf"
	"ustack/link"
	"ustack/link/internal/memlink"
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
	// counted in the writer's TxDrops. With several queues, each has this
	// bound.
	QueueLen int
	// Queues is the number of receive queues on each side (0 or 1: one;
	// at most 64), each drained by its own reader goroutine, like the
	// receive queues of a NIC with receive-side scaling: the writer
	// hashes each frame's flow (IPv4/IPv6 addresses and TCP/UDP ports,
	// symmetric; see QueueOf) to pick the queue, so one flow stays in
	// order on one queue while different flows are received on
	// different cores. Frames that are not IP go to queue 0. With more
	// than one queue the receiving side's Dispatcher is called from that
	// many goroutines at once.
	//
	// The default is one queue, as on a veth pair: a pipe is mostly a
	// test fixture, where one reader keeps delivery across flows in
	// write order and costs one goroutine per side, and an in-process
	// topology of many stacks gains nothing from more readers than
	// cores. Set it to runtime.GOMAXPROCS(0) (or the number of busy
	// flows, if smaller) to spread a many-flow load over the cores.
	Queues int
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
	rx    *memlink.Queue // what the peer writes
}

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
	return a, b
}

func genMAC(seed uint32, side byte) wire.MAC {
	// Locally administered, individual (IEEE 802-2014 §8.2.2).
	return wire.MAC{0x02, 0x00, byte(seed >> 16), byte(seed >> 8), byte(seed), side}
}

// newEndpoint returns one side, its reader started.
func newEndpoint(cfg Config, name string, mac wire.MAC) *Endpoint {
	e := &Endpoint{
		name: name,
		typ:  cfg.Type,
		mtu:  cfg.MTU,
		mac:  mac,
		caps: cfg.Offloads & offloadCaps,
	}
	e.rx = memlink.NewConfig(e, &e.stats,
		memlink.Config{Len: cfg.QueueLen, Queues: cfg.Queues, Type: cfg.Type},
		func(p *buf.Packet) { resetMeta(p, e.caps) })
	return e
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

// NumRxQueues is the number of receive queues (Config.Queues).
func (e *Endpoint) NumRxQueues() int { return e.rx.NumQueues() }

// RxQueuePackets is the number of frames receive queue i has delivered
// (ethtool's rx_queue_<i>_packets). It panics if i is out of range.
func (e *Endpoint) RxQueuePackets(i int) uint64 { return e.rx.QueuePackets(i) }

// QueueOf returns the receive queue, in [0, queues), on which a pipe of
// framing t with that many queues puts frame: a symmetric hash of the
// IPv4 or IPv6 addresses, and of the ports for TCP, UDP, UDP-Lite and SCTP
// (not for fragments or behind IPv6 extension headers); 0 for frames
// that are not IP. It reads only the headers and does not allocate.
func QueueOf(frame []byte, t link.Type, queues int) int {
	return memlink.QueueOf(frame, t, queues)
}

// Peer returns the other side.
func (e *Endpoint) Peer() *Endpoint { return e.peer }

// Attach makes d receive the frames written on the other side; nil
// detaches. It does not wait for a batch being delivered to the previous
// dispatcher; Close does.
func (e *Endpoint) Attach(d link.Dispatcher) { e.rx.Attach(d) }

// WriteBatch sends the frames to the other side's queue. It takes ownership
// of every packet in pkts and returns how many were queued. Frames shorter
// than a link header or longer than MTU plus link header (unless they are
// large segments the configured offloads allow) are dropped and counted in
// TxErrors; frames that find the peer's queue full or the peer closed are
// dropped and counted in TxDrops. Neither is an error. It fails with
// link.ErrClosed when e is closed.
func (e *Endpoint) WriteBatch(pkts []*buf.Packet) (int, error) {
	if e.rx.Closed() {
		link.ReleaseAll(pkts, 0)
		return 0, link.ErrClosed
	}
	return e.peer.rx.Push(pkts, e.fits, &e.stats), nil
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

// Close stops the reader goroutine, drops what is queued and waits until no
// batch is being delivered. Writes on e fail from then on; writes from the
// peer are dropped. Closing twice returns link.ErrClosed. It must not be
// called from e's own Dispatcher (it would wait for itself).
func (e *Endpoint) Close() error { return e.rx.Close() }

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
