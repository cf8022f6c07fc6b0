// Package link is the contract between ustack and the devices that move its
// frames: in-memory pipes, loopback, TAP and TUN, AF_PACKET sockets, and
// decorators (fault injection, capture) that wrap any of them.
//
// A driver moves batches of frames and knows nothing of protocols. Frames
// are whole link-layer frames (Ethernet header included) on Ethernet links
// and bare IP packets on IP links (TUN, loopback). Offload state (partial
// checksums, large segments) travels in buf.Packet.Offload with virtio-net
// semantics; a driver announces what it accepts through Capabilities.
//
// Receive: after Attach, the driver's reader goroutine hands each batch to
// the Dispatcher, which carries it up the stack inline (no hand-off between
// goroutines per packet). Send: WriteBatch, from any goroutine.
package link

import (
	"errors"
	"fmt"

	"ustack/buf"
	"ustack/internal/stats"
	"ustack/wire"
)

// Type is the framing a link carries.
type Type uint8

const (
	// TypeEthernet links carry Ethernet II frames.
	TypeEthernet Type = iota
	// TypeIP links carry bare IPv4 and IPv6 packets (TUN, loopback).
	TypeIP
)

func (t Type) String() string {
	switch t {
	case TypeEthernet:
		return "ethernet"
	case TypeIP:
		return "ip"
	}
	return fmt.Sprintf("link-type(%d)", uint8(t))
}

// Capabilities is the set of things a link can do for the stack.
type Capabilities uint32

const (
	// CapTxChecksum: WriteBatch accepts packets with Offload.NeedsCsum and
	// completes the checksum (or the peer does not need it).
	CapTxChecksum Capabilities = 1 << iota
	// CapRxChecksum: received packets may carry Offload.CsumValid or
	// Offload.NeedsCsum (a partial checksum from a local kernel peer).
	CapRxChecksum
	// CapTSO4, CapTSO6: WriteBatch accepts TCP packets larger than the MTU
	// with Offload.GSO set, and segments them.
	CapTSO4
	CapTSO6
	// CapUSO: WriteBatch accepts UDP GSO packets (Offload.GSO = GSOUDPL4).
	CapUSO
	// CapRxGSO: received packets may be larger than the MTU, with
	// Offload.GSO describing how the sender would have cut them.
	CapRxGSO
	// CapLoopback: frames written are received by the same stack.
	CapLoopback
)

var capNames = []string{"tx-csum", "rx-csum", "tso4", "tso6", "uso", "rx-gso", "loopback"}

func (c Capabilities) String() string {
	s := ""
	for i, n := range capNames {
		if c&(1<<i) != 0 {
			if s != "" {
				s += ","
			}
			s += n
		}
	}
	if s == "" {
		return "none"
	}
	return s
}

// Has reports whether every capability in o is in c.
func (c Capabilities) Has(o Capabilities) bool { return c&o == o }

// Endpoint is one link device.
type Endpoint interface {
	// Name is the driver's name for the device ("afpacket:veth0").
	Name() string
	// Type is the framing.
	Type() Type
	// MTU is the largest network-layer packet the link carries unsegmented
	// (without the link header).
	MTU() int
	// HardwareAddr is the link address; zero on IP links.
	HardwareAddr() wire.MAC
	// Capabilities is what the link does for the stack; fixed for the
	// endpoint's life.
	Capabilities() Capabilities
	// HeaderRoom is the headroom the driver needs in front of each frame
	// passed to WriteBatch (for a virtio-net header, say). Senders should
	// leave it; drivers must cope when they don't.
	HeaderRoom() int
	// Attach starts delivery of received frames to d, replacing any earlier
	// dispatcher; Attach(nil) stops delivery (detach). Frames received while
	// detached are dropped.
	Attach(d Dispatcher)
	// WriteBatch sends the frames. It takes ownership of every packet in
	// pkts, sent or not, and returns how many were sent. The slice itself
	// stays the caller's. It is safe to call from many goroutines.
	WriteBatch(pkts []*buf.Packet) (int, error)
	// Close detaches and releases the device. Later writes fail with
	// ErrClosed.
	Close() error
}

// Dispatcher receives frames from a link.
type Dispatcher interface {
	// DeliverBatch takes ownership of every packet in pkts (not of the
	// slice, which the driver reuses once the call returns). A driver calls
	// it from one goroutine at a time per receive queue, in arrival order.
	// A driver configured with several receive queues (multi-queue pipe,
	// loopback or TAP) calls it from as many goroutines at once; it keeps
	// the frames of one flow on one queue, so each flow stays in order.
	DeliverBatch(ep Endpoint, pkts []*buf.Packet)
}

// DispatcherFunc adapts a function to Dispatcher.
type DispatcherFunc func(ep Endpoint, pkts []*buf.Packet)

// DeliverBatch calls f.
func (f DispatcherFunc) DeliverBatch(ep Endpoint, pkts []*buf.Packet) { f(ep, pkts) }

// ErrClosed is returned by operations on a closed endpoint.
var ErrClosed = errors.New("link: endpoint closed")

// MaxBatch is the batch size drivers use unless configured otherwise.
const MaxBatch = 64

// ReleaseAll releases every packet in pkts from index i on. Drivers use it
// when a write fails part-way.
func ReleaseAll(pkts []*buf.Packet, i int) {
	for ; i < len(pkts); i++ {
		pkts[i].Release()
	}
}

// Stats are counters a driver keeps. All drivers embed one and export it
// through the Counted interface.
type Stats struct {
	RxPackets, RxBytes, RxDrops stats.Counter
	TxPackets, TxBytes, TxDrops stats.Counter
	RxErrors, TxErrors          stats.Counter
}

// Counted is implemented by endpoints that keep Stats.
type Counted interface {
	LinkStats() *Stats
}

// Visit reports the counters with the given name prefix.
func (s *Stats) Visit(prefix string, v stats.Visitor) {
	v(prefix+"rx.packets", s.RxPackets.Load())
	v(prefix+"rx.bytes", s.RxBytes.Load())
	v(prefix+"rx.drops", s.RxDrops.Load())
	v(prefix+"rx.errors", s.RxErrors.Load())
	v(prefix+"tx.packets", s.TxPackets.Load())
	v(prefix+"tx.bytes", s.TxBytes.Load())
	v(prefix+"tx.drops", s.TxDrops.Load())
	v(prefix+"tx.errors", s.TxErrors.Load())
}
