package fdlink

import (
	"sync/atomic"

	"ustack/buf"
	"ustack/link"
	"ustack/link/offload"
	"ustack/wire"
)

// Info is what an endpoint is: fixed when it opens.
type Info struct {
	// Name is the driver's name for the device ("tap:ust0").
	Name string
	Type link.Type
	MTU  int
	MAC  wire.MAC
	Caps link.Capabilities
	// Accept is what the stack above takes as it is; the rest is done in
	// software on receive (offload.PrepareRx).
	Accept offload.Accept
}

// Base is the part of a descriptor-backed endpoint that does not depend on
// the descriptor: identity, counters, the dispatcher and receive
// processing of frames that carry a virtio-net header. Its methods
// implement the matching link.Endpoint methods.
type Base struct {
	Info
	Stats link.Stats
	// Offload counts large frames and partial checksums both ways and
	// what GRO merged.
	Offload offload.Stats
	disp    atomic.Pointer[dispatcher]
}

type dispatcher struct{ d link.Dispatcher }

func (b *Base) Name() string                    { return b.Info.Name }
func (b *Base) Type() link.Type                 { return b.Info.Type }
func (b *Base) MTU() int                        { return b.Info.MTU }
func (b *Base) HardwareAddr() wire.MAC          { return b.MAC }
func (b *Base) Capabilities() link.Capabilities { return b.Caps }
func (b *Base) LinkStats() *link.Stats          { return &b.Stats }

// Attach sets the dispatcher; nil detaches.
func (b *Base) Attach(d link.Dispatcher) {
	if d == nil {
		b.disp.Store(nil)
		return
	}
	b.disp.Store(&dispatcher{d})
}

// Input takes a received frame that starts with a virtio-net header: it
// decodes the header into the packet's Offload, strips it, finishes the
// frame for the stack (offload.PrepareRx) and appends what results to out.
// Bad frames are counted as receive errors and released. Takes ownership
// of pkt.
func (b *Base) Input(pkt *buf.Packet, out []*buf.Packet) []*buf.Packet {
	b.Stats.RxPackets.Inc()
	b.Stats.RxBytes.Add(uint64(max(pkt.Len()-offload.HeaderLen, 0)))
	h := pkt.Pullup(offload.HeaderLen)
	if h == nil {
		b.Stats.RxErrors.Inc()
		pkt.Release()
		return out
	}
	o, err := offload.ParseHeader(h)
	if err != nil {
		b.Stats.RxErrors.Inc()
		pkt.Release()
		return out
	}
	pkt.TrimFront(offload.HeaderLen)
	pkt.Offload = o
	if o.GSO != buf.GSONone {
		b.Offload.RxGSOPackets.Inc()
		b.Offload.RxGSOBytes.Add(uint64(pkt.Len()))
		if !b.Accept.Large() {
			b.Offload.RxSegmented.Inc()
		}
	} else if o.NeedsCsum && !b.Accept.Partial() {
		b.Offload.RxCompleted.Inc()
	}
	out, err = offload.PrepareRx(pkt, b.Info.Type, b.Accept, out)
	if err != nil {
		b.Stats.RxErrors.Inc()
	}
	return out
}

// Flush hands the frames of a received batch to the dispatcher, merged
// first when Accept.GRO, with g (the reader's own Coalescer) and scratch
// (the reader's own slice, returned emptied for reuse). It takes
// ownership of the packets, not of the slices.
func (b *Base) Flush(self link.Endpoint, pkts []*buf.Packet, g *offload.Coalescer, scratch []*buf.Packet) []*buf.Packet {
	if !b.Accept.GRO || len(pkts) < 2 {
		b.Dispatch(self, pkts)
		return scratch
	}
	m0, b0 := g.Merged, g.Built
	out := g.Coalesce(pkts, b.Info.Type, scratch[:0])
	b.Offload.RxCoalesced.Add(g.Merged - m0)
	b.Offload.RxGROPackets.Add(g.Built - b0)
	b.Dispatch(self, out)
	clear(out)
	return out[:0]
}

// CountTx counts a frame handed to the device in Offload.
func (b *Base) CountTx(p *buf.Packet) {
	if p.Offload.GSO != buf.GSONone {
		b.Offload.TxGSOPackets.Inc()
		b.Offload.TxGSOBytes.Add(uint64(p.Len()))
	}
	if p.Offload.NeedsCsum {
		b.Offload.TxPartialCsum.Inc()
	}
}

// Dispatch hands pkts to the dispatcher as a batch from self, or drops
// them (counted) when none is attached. Takes ownership of the packets,
// not of the slice.
func (b *Base) Dispatch(self link.Endpoint, pkts []*buf.Packet) {
	if len(pkts) == 0 {
		return
	}
	d := b.disp.Load()
	if d == nil {
		b.Stats.RxDrops.Add(uint64(len(pkts)))
		link.ReleaseAll(pkts, 0)
		return
	}
	d.d.DeliverBatch(self, pkts)
}
