package ipv6

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

// Reassembly of fragmented packets (RFC 8200 §4.5).
//
// A datagram is identified by source, destination and fragment
// identification. Policy:
//   - a fragment that repeats one held, byte range for byte range, is
//     dropped alone (RFC 8200 §4.5 allows it); any other overlap discards
//     the whole datagram, and fragments of it that arrive later until its
//     timer runs out (RFC 5722 §4);
//   - a non-last fragment whose length is not a multiple of 8, or one that
//     would make the reassembled payload exceed 65535 bytes, is dropped
//     with a parameter problem (RFC 8200 §4.5);
//   - a first fragment without the whole header chain is dropped with its
//     datagram and a parameter problem code 3 (RFC 7112 §5);
//   - after 60 seconds an incomplete datagram goes, with time exceeded
//     code 1 to the source if the first fragment came (RFC 8200 §4.5);
//   - memory held is capped; the oldest datagrams make room.
//
// The reassembled packet is the first fragment's unfragmentable part (the
// IPv6 header and the extension headers before the fragment header, the
// last of them now naming the fragment header's next header) followed by
// the fragments' data: the original packet, which receive walks again.

// fragKey identifies a packet being reassembled (RFC 8200 §4.5).
type fragKey struct {
	src, dst netip.Addr
	id       uint32
}

type fragment struct {
	off, end int // fragmentable-part byte range [off, end)
	pkt      *buf.Packet
}

// What held state counts against the memory cap, beyond data bytes: a
// fragment pins a packet and at least part of a 2 KiB buffer chunk, so a
// flood of tiny fragments is not cheap to hold (as Linux counts an skb's
// truesize); a poisoned datagram (discarded for an overlap, kept to
// discard its later fragments) holds only its entry.
const (
	fragOverhead = 512
	poisonCost   = 64
)

type datagram struct {
	key   fragKey
	frags []fragment // sorted by off, disjoint
	size  int        // data bytes held
	cost  int        // what it counts against the memory cap
	total int        // fragmentable-part length once the last fragment came; -1 before
	// first is the offset-0 fragment (also in frags), kept for time
	// exceeded; unfrag is a copy of its unfragmentable part with the
	// next-header field at nhOff, and next the fragment header's next
	// header.
	first    *buf.Packet
	unfrag   []byte
	nhOff    int
	next     wire.IPProtocol
	ifIndex  int
	timer    clock.Timer
	poisoned bool
	dead     bool
	// older and newer link the datagrams by arrival, for eviction.
	older, newer *datagram
}

type reassembler struct {
	p    *Protocol
	mu   sync.Mutex
	m    map[fragKey]*datagram
	held int
	// oldest and newest are the ends of the arrival list.
	oldest, newest *datagram
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

// fragmentInput checks a fragment (RFC 8200 §4.5, RFC 7112) and files it.
// It takes ownership of pkt, whose front is the IPv6 header; b is the
// pulled-up front and res.off the fragment header's offset. A completed
// packet is walked again.
func (p *Protocol) fragmentInput(ifc proto.Interface, pkt *buf.Packet, b []byte, res walkResult, mcast bool) {
	p.fragsIn.Inc()
	h := wire.IPv6(b)
	f := wire.IPv6Fragment(b[res.off : res.off+wire.IPv6FragmentLen])
	dataOff := res.off + wire.IPv6FragmentLen
	n := pkt.Len() - dataOff
	key := fragKey{h.Src(), h.Dst(), f.ID()}
	pkt.NetworkHeader = b[:wire.IPv6HeaderLen]
	fail := func(r proto.DropReason, code uint8, ptr int) {
		p.counters.Drop(r)
		p.icmp.sendError(ifc, pkt, wire.IPv6HeaderLen, wire.ICMPv6ParamProblem, code, uint32(ptr))
		pkt.Release()
	}
	switch {
	case res.incomplete:
		// RFC 7112 §5: the pointer is zero.
		p.tinyFirst.Inc()
		p.reasm.discard(key, proto.DropFragInvalid)
		fail(proto.DropFragInvalid, wire.ICMPv6IncompleteChain, 0)
		return
	case f.MoreFragments() && n%8 != 0:
		// Pointing at the payload length.
		fail(proto.DropFragInvalid, wire.ICMPv6ErroneousHeader, 4)
		return
	case f.MoreFragments() && n == 0:
		p.drop(pkt, proto.DropFragInvalid)
		return
	case res.off-wire.IPv6HeaderLen+f.Offset()+n > wire.IPv6MaxPayloadLen:
		// Pointing at the fragment offset.
		fail(proto.DropFragTooBig, wire.ICMPv6ErroneousHeader, res.off+2)
		return
	}
	// The headers up to and including the fragment header stay in
	// storage for time exceeded; the front becomes the data.
	pkt.NetworkHeader = b[:dataOff]
	pkt.TrimFront(dataOff)
	whole := p.reasm.add(ifc, key, f, b[:res.off], res.nhOff, pkt)
	if whole != nil {
		p.receive(ifc, whole, mcast, true)
	}
}

// add files a fragment. It takes ownership of pkt (front: the fragment's
// data). unfrag is the packet's unfragmentable part (IPv6 header and the
// extension headers before the fragment header f) and nhOff the offset in
// it of the field naming f. When the packet is complete it returns it
// rebuilt (front: its IPv6 header); otherwise nil.
func (r *reassembler) add(ifc proto.Interface, key fragKey, f wire.IPv6Fragment, unfrag []byte, nhOff int, pkt *buf.Packet) *buf.Packet {
	p := r.p
	off, n, mf := f.Offset(), pkt.Len(), f.MoreFragments()
	end := off + n

	r.mu.Lock()
	d := r.m[key]
	if d == nil {
		d = &datagram{key: key, total: -1, ifIndex: ifc.Index(), older: r.newest}
		r.m[key] = d
		if r.newest != nil {
			r.newest.newer = d
		} else {
			r.oldest = d
		}
		r.newest = d
		d.timer = p.clk.AfterFunc(time.Duration(p.reasmTime.Load()), func() { r.expire(d) })
	}
	if d.poisoned {
		r.mu.Unlock()
		p.drop(pkt, proto.DropFragOverlap) // RFC 5722 §4: "not yet received" ones too
		return nil
	}
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
		r.poisonLocked(d)
		r.mu.Unlock()
		p.drop(pkt, proto.DropFragOverlap)
		return nil
	}
	// Memory cap: evict the oldest datagrams to make room.
	cost := n + fragOverhead
	for r.held+cost > int(p.reasmMemory.Load()) && r.oldest != nil {
		old := r.oldest
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
	d.cost += cost
	r.held += cost
	if !mf {
		d.total = end
	}
	if off == 0 {
		d.first = pkt
		d.unfrag = append([]byte(nil), unfrag...)
		d.nhOff, d.next = nhOff, f.NextHeader()
	}
	if d.total < 0 || d.size != d.total || d.first == nil {
		r.mu.Unlock()
		return nil
	}
	// Complete: the fragments are disjoint and add up to total.
	r.removeLocked(d)
	r.mu.Unlock()
	d.timer.Stop()
	whole := d.frags[0].pkt
	for _, fr := range d.frags[1:] {
		whole.Concat(fr.pkt)
	}
	hdr := whole.Prepend(len(d.unfrag))
	copy(hdr, d.unfrag)
	hdr[d.nhOff] = uint8(d.next)
	wire.IPv6(hdr).SetPayloadLen(len(d.unfrag) - wire.IPv6HeaderLen + d.total)
	whole.NetworkHeader = nil
	whole.Offload = buf.Offload{} // no link verified the whole packet's checksum
	p.reasmOK.Inc()
	return whole
}

// discard drops the datagram with key, if one is held.
func (r *reassembler) discard(key fragKey, reason proto.DropReason) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if d := r.m[key]; d != nil {
		r.killLocked(d, reason)
	}
}

// expire runs when a datagram's time is up: its fragments go and, if the
// first fragment came, its source gets time exceeded, code 1 (RFC 8200
// §4.5). A poisoned datagram goes quietly.
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
			r.p.icmp.sendError(ifc, first, 0, wire.ICMPv6TimeExceeded, wire.ICMPv6ReassemblyExceeded, 0)
		}
		first.Release()
	}
}

// poisonLocked discards a datagram's fragments for an overlap and keeps
// its entry, so that its later fragments are discarded too until its timer
// runs out (RFC 5722 §4).
func (r *reassembler) poisonLocked(d *datagram) {
	r.releaseLocked(d, proto.DropFragOverlap)
	r.held += poisonCost - d.cost
	d.poisoned, d.size, d.cost, d.first = true, 0, poisonCost, nil
}

// killLocked forgets a datagram and releases its fragments, counting each
// under reason (none when the stack is closing).
func (r *reassembler) killLocked(d *datagram, reason proto.DropReason) {
	r.removeLocked(d)
	if d.timer != nil {
		d.timer.Stop()
	}
	r.releaseLocked(d, reason)
}

func (r *reassembler) releaseLocked(d *datagram, reason proto.DropReason) {
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
	r.held -= d.cost
	if d.older != nil {
		d.older.newer = d.newer
	} else {
		r.oldest = d.newer
	}
	if d.newer != nil {
		d.newer.older = d.older
	} else {
		r.newest = d.older
	}
	d.older, d.newer = nil, nil
}

func (r *reassembler) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range r.m {
		r.killLocked(d, proto.DropNone)
	}
}
