package ipv6

import (
	"net/netip"
	"time"

	"ustack/buf"
	"ustack/network/internal/reasm"
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
// The table itself is network/internal/reasm's.

// fragKey identifies a packet being reassembled (RFC 8200 §4.5).
type fragKey struct {
	src, dst netip.Addr
	id       uint32
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

// firstFrag is what a datagram keeps from its offset-0 fragment: a copy
// of its unfragmentable part with the next-header field at nhOff, and
// next, the fragment header's next header.
type firstFrag struct {
	unfrag []byte
	nhOff  int
	next   wire.IPProtocol
}

type reassembler struct {
	t *reasm.Table[fragKey, firstFrag]
}

func newReassembler(p *Protocol) *reassembler {
	return &reassembler{t: reasm.New[fragKey, firstFrag](p.clk, reasm.Policy{
		Timeout:    func() time.Duration { return time.Duration(p.reasmTime.Load()) },
		Memory:     func() int { return int(p.reasmMemory.Load()) },
		Overhead:   fragOverhead,
		Poison:     true,
		PoisonCost: poisonCost,
		Drop:       func(r proto.DropReason) { p.counters.Drop(r) },
		// Time exceeded, code 1, to the source if the first fragment came
		// (RFC 8200 §4.5).
		Expired: func(ifIndex int, first *buf.Packet) {
			if ifc := p.ifs.Interface(ifIndex); ifc != nil {
				p.icmp.sendError(ifc, first, 0, wire.ICMPv6TimeExceeded, wire.ICMPv6ReassemblyExceeded, 0)
			}
			first.Release()
		},
	})}
}

func (r *reassembler) pending() int { return r.t.Pending() }
func (r *reassembler) bytes() int   { return r.t.Bytes() }
func (r *reassembler) close()       { r.t.Close() }

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
		p.reasm.t.Discard(key, proto.DropFragInvalid)
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
	whole := p.reassemble(ifc, key, f, b[:res.off], res.nhOff, pkt)
	if whole != nil {
		p.receive(ifc, whole, mcast, true, nil)
	}
}

// reassemble files a fragment. It takes ownership of pkt (front: the
// fragment's data). unfrag is the packet's unfragmentable part (IPv6 header
// and the extension headers before the fragment header f) and nhOff the
// offset in it of the field naming f. When the packet is complete it
// returns it rebuilt (front: its IPv6 header); otherwise nil.
func (p *Protocol) reassemble(ifc proto.Interface, key fragKey, f wire.IPv6Fragment, unfrag []byte, nhOff int, pkt *buf.Packet) *buf.Packet {
	var first firstFrag
	if f.Offset() == 0 {
		first = firstFrag{append([]byte(nil), unfrag...), nhOff, f.NextHeader()}
	}
	whole, first, ok := p.reasm.t.Add(key, ifc.Index(), f.Offset(), f.MoreFragments(), pkt, first)
	if !ok {
		return nil
	}
	total := whole.Len()
	hdr := whole.Prepend(len(first.unfrag))
	copy(hdr, first.unfrag)
	hdr[first.nhOff] = uint8(first.next)
	wire.IPv6(hdr).SetPayloadLen(len(first.unfrag) - wire.IPv6HeaderLen + total)
	whole.NetworkHeader = nil
	whole.Offload = buf.Offload{} // no link verified the whole packet's checksum
	p.reasmOK.Inc()
	return whole
}
