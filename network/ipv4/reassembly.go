package ipv4

import (
	"net/netip"
	"sort"
	"sync"
	"time"

	"ustack/buf"
	"ustack/internal/clock"
	"ustack/proto"
	"ustack/wire"
)

// Reassembly of fragmented datagrams (RFC 791 §3.2, RFC 815 for the idea
// of holes; RFC 1122 §3.3.2 for the timeout and ICMP time exceeded).
//
// Policy, as Linux applies it to IPv4: a fragment that repeats one we hold
// byte range for byte range is dropped alone; one that overlaps otherwise
// drops the whole datagram (the ambiguity attackers use, RFC 5722 in
// spirit); a datagram that would exceed 65535 bytes is dropped; memory held
// by fragments is capped, the oldest datagram making room for new ones.

// fragKey identifies a datagram being reassembled (RFC 791: source,
// destination, protocol, identification).
type fragKey struct {
	src, dst netip.Addr
	proto    wire.IPProtocol
	id       uint16
}

type fragment struct {
	off, end int // payload byte range [off, end)
	pkt      *buf.Packet
}

type datagram struct {
	key     fragKey
	frags   []fragment // sorted by off, disjoint
	size    int        // bytes held (payload)
	total   int        // payload length once the last fragment came; -1 before
	first   *buf.Packet
	ifIndex int
	timer   clock.Timer
	born    time.Time
	dead    bool
}

type reassembler struct {
	p     *Protocol
	mu    sync.Mutex
	m     map[fragKey]*datagram
	held  int
	order []*datagram // by arrival, for eviction
}

func newReassembler(p *Protocol) *reassembler {
	return &reassembler{p: p, m: make(map[fragKey]*datagram)}
}

func (r *reassembler) pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.m)
}

func (r *reassembler) bytes() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.held
}

// add files a fragment. It takes ownership of pkt (front: IPv4 header h;
// pkt.NetworkHeader set). When the datagram is complete it returns the
// whole payload as one packet whose NetworkHeader is the first fragment's
// header; otherwise nil.
func (r *reassembler) add(ifc proto.Interface, h wire.IPv4, pkt *buf.Packet) *buf.Packet {
	p := r.p
	off := h.FragmentOffset()
	hl := h.HeaderLen()
	n := h.TotalLen() - hl
	end := off + n
	mf := h.MoreFragments()
	switch {
	case n == 0, mf && n%8 != 0:
		p.drop(pkt, proto.DropFragInvalid)
		return nil
	case end+hl > wire.IPv4MaxTotalLen:
		p.drop(pkt, proto.DropFragTooBig)
		return nil
	}
	key := fragKey{h.Src(), h.Dst(), h.Protocol(), h.ID()}
	pkt.TrimFront(hl)

	r.mu.Lock()
	d := r.m[key]
	if d == nil {
		d = &datagram{key: key, total: -1, ifIndex: ifc.Index(), born: p.clk.Now()}
		r.m[key] = d
		r.order = append(r.order, d)
		d.timer = p.clk.AfterFunc(time.Duration(p.reasmTime.Load()), func() { r.expire(d) })
	}
	// Where does it go, and does it collide?
	i := sort.Search(len(d.frags), func(i int) bool { return d.frags[i].off >= off })
	if i < len(d.frags) && d.frags[i].off == off && d.frags[i].end == end {
		r.mu.Unlock()
		p.drop(pkt, proto.DropFragDuplicate) // exact duplicate: only this one goes
		return nil
	}
	overlap := (i > 0 && d.frags[i-1].end > off) || (i < len(d.frags) && d.frags[i].off < end)
	if !mf {
		if d.total >= 0 && d.total != end {
			overlap = true // two different ends
		}
		if len(d.frags) > 0 && d.frags[len(d.frags)-1].end > end {
			overlap = true // data past the end
		}
	} else if d.total >= 0 && end > d.total {
		overlap = true
	}
	if overlap {
		r.killLocked(d, proto.DropFragOverlap)
		r.mu.Unlock()
		p.drop(pkt, proto.DropFragOverlap)
		return nil
	}
	// Memory cap: evict the oldest datagrams to make room.
	for r.held+n > int(p.reasmMemory.Load()) && len(r.order) > 0 {
		old := r.order[0]
		if old == d {
			r.killLocked(d, proto.DropFragMemory)
			r.mu.Unlock()
			p.drop(pkt, proto.DropFragMemory)
			return nil
		}
		r.killLocked(old, proto.DropFragMemory)
	}
	d.frags = append(d.frags, fragment{})
	copy(d.frags[i+1:], d.frags[i:])
	d.frags[i] = fragment{off: off, end: end, pkt: pkt}
	d.size += n
	r.held += n
	if !mf {
		d.total = end
	}
	if off == 0 {
		d.first = pkt
	}
	if d.total < 0 || d.size != d.total {
		r.mu.Unlock()
		return nil
	}
	// Complete: the fragments are disjoint and add up to total.
	r.removeLocked(d)
	r.mu.Unlock()
	d.timer.Stop()
	whole := d.frags[0].pkt
	for _, f := range d.frags[1:] {
		whole.Concat(f.pkt)
	}
	p.reasmOK.Inc()
	return whole
}

// expire runs when a datagram's time is up: its fragments go and, if the
// first fragment came, the sender gets time exceeded (RFC 792; RFC 1122
// §3.3.2).
func (r *reassembler) expire(d *datagram) {
	r.mu.Lock()
	if d.dead {
		r.mu.Unlock()
		return
	}
	first := d.first
	d.first = nil
	if first != nil {
		// Keep the first fragment for the error, release the rest.
		for i := range d.frags {
			if d.frags[i].pkt == first {
				d.frags[i].pkt = nil
			}
		}
	}
	r.killLocked(d, proto.DropFragTimeout)
	r.mu.Unlock()
	if first != nil {
		r.p.counters.Drop(proto.DropFragTimeout)
		if ifc := r.p.ifs.Interface(d.ifIndex); ifc != nil {
			r.p.icmp.sendError(ifc, first, 0, wire.ICMPv4TimeExceeded, wire.ICMPv4ReassemblyExceeded, 0)
		}
		first.Release()
	}
}

// killLocked drops a datagram and releases its fragments, counting each
// under reason (none when the stack is closing).
func (r *reassembler) killLocked(d *datagram, reason proto.DropReason) {
	r.removeLocked(d)
	if d.timer != nil {
		d.timer.Stop()
	}
	for _, f := range d.frags {
		if f.pkt != nil {
			f.pkt.Release()
			if reason != proto.DropNone {
				r.p.counters.Drop(reason)
			}
		}
	}
	d.frags = nil
}

func (r *reassembler) removeLocked(d *datagram) {
	if d.dead {
		return
	}
	d.dead = true
	delete(r.m, d.key)
	r.held -= d.size
	for i, o := range r.order {
		if o == d {
			r.order = append(r.order[:i], r.order[i+1:]...)
			break
		}
	}
}

func (r *reassembler) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range r.m {
		r.killLocked(d, proto.DropNone)
	}
}
