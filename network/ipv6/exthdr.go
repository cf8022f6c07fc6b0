package ipv6

import (
	"errors"
	"strconv"

	"ustack/buf"
	"ustack/internal/stats"
	"ustack/proto"
	"ustack/wire"
)

// Extension header processing at the destination (RFC 8200 §4).
//
//	receive → pull up the chain → walk (pure: decides) → act (counts, sends
//	ICMPv6, delivers or reassembles)
//
// walk looks at each header in order: options headers have their options
// checked by their action bits (§4.2), routing headers are refused unless
// segments left is 0 (§4.4, RFC 5095 §3: ustack executes no routing type,
// type 0 included), a fragment header hands the packet to reassembly
// (§4.5) unless it is atomic (RFC 6946), and any other extension header is
// an unrecognized next header unless a transport registered for it. The
// chain is cut at max_ext_headers headers.

const (
	// chainPullup is how much of a packet is made contiguous to walk its
	// chain at first; walk asks for more when a chain runs past it.
	chainPullup = 512
	// maxOptions is the most non-padding options one options header may
	// carry, and maxPadding the longest run of padding: alignment never
	// needs more than 7 bytes (RFC 8200 §4.2); longer runs and long option
	// lists only cost the receiver (RFC 8504 §5.3, Linux's limits).
	maxOptions = 8
	maxPadding = 7
)

type walkKind uint8

const (
	walkContinue walkKind = iota
	walkDeliver
	walkFragment
	walkNoNext
	walkDrop
	walkParamProblem
	walkNeedMore
)

// walkResult is what walk decided about a packet.
type walkResult struct {
	kind  walkKind
	upper wire.IPProtocol // walkDeliver
	// off is the offset from the IPv6 header of the upper-layer header
	// (walkDeliver) or of the fragment header (walkFragment).
	off int
	// nhOff is the offset of the next-header field that named the upper
	// layer or the fragment header.
	nhOff int
	// incomplete: a first fragment without its whole header chain
	// (RFC 7112 §5).
	incomplete bool
	atomic     bool // an atomic fragment header was passed (RFC 6946)

	reason  proto.DropReason // walkDrop, walkParamProblem
	code    uint8            // walkParamProblem
	ptr     int              // walkParamProblem: offset of the octet in error
	counter *stats.Counter   // extra counter to count the drop under
}

func dropResult(r proto.DropReason, c *stats.Counter) walkResult {
	return walkResult{kind: walkDrop, reason: r, counter: c}
}

func problem(r proto.DropReason, code uint8, ptr int, c *stats.Counter) walkResult {
	return walkResult{kind: walkParamProblem, reason: r, code: code, ptr: ptr, counter: c}
}

// receive walks the extension headers of a packet addressed to us and
// acts on them. It takes ownership of pkt, whose front is the IPv6 header
// (as received, or rebuilt by reassembly when reassembled is set); batch
// is the received batch it came in (nil for reassembled datagrams).
func (p *Protocol) receive(ifc proto.Interface, pkt *buf.Packet, mcast, reassembled bool, batch *proto.Batch) {
	// Walk what is contiguous already when it holds the fixed header:
	// walk asks for more only when the chain goes on past it, so the
	// common packet (no extension headers, payload in views of its own)
	// is not copied.
	n := min(pkt.Len(), chainPullup)
	if v := len(pkt.View(0)); v >= wire.IPv6HeaderLen && v < n {
		n = v
	}
	for {
		b := pkt.Pullup(n)
		res := p.walk(b, pkt.Len(), mcast, reassembled)
		if res.kind == walkNeedMore {
			n = min(pkt.Len(), 4*n)
			continue
		}
		p.act(ifc, pkt, b, res, mcast, batch)
		return
	}
}

// walk decides what to do with the packet whose first len(b) of total
// bytes are b, starting with the IPv6 header. It has no side effects, so
// receive can run it again over more bytes when it answers walkNeedMore.
func (p *Protocol) walk(b []byte, total int, mcast, reassembled bool) walkResult {
	short := len(b) < total
	maxExt := int(p.maxExt.Load())
	h := wire.IPv6(b)
	it := wire.NewIPv6ExtIter(h.NextHeader(), b[wire.IPv6HeaderLen:])
	var res walkResult
	count := 0
	fragOff, fragNH := -1, 0
	next := wire.IPv6HeaderLen // where the next header starts
	for {
		nhOff := wire.IPv6HeaderLen + it.NextHeaderOffset()
		if typ := wire.IPProtocol(b[nhOff]); fragOff < 0 && wire.IsIPv6ExtHeader(typ) && !processed(typ) {
			// AH, mobility, HIP, shim6, experimental: only a transport
			// registered for the number handles them, framing and all.
			if p.transports[typ] != nil {
				return walkResult{kind: walkDeliver, upper: typ, off: next, nhOff: nhOff, atomic: res.atomic}
			}
			return problem(proto.DropUnknownProtocol, wire.ICMPv6UnrecognizedNextHeader, nhOff, nil)
		}
		ext, ok := it.Next()
		if !ok {
			break
		}
		next = wire.IPv6HeaderLen + ext.Offset + ext.Len
		if count++; count > maxExt {
			return dropResult(proto.DropBadOption, &p.extLimit)
		}
		off := wire.IPv6HeaderLen + ext.Offset
		if fragOff >= 0 {
			// Past the fragment header of a first fragment: only
			// checking that the chain is whole (RFC 7112); the headers
			// are processed after reassembly.
			continue
		}
		switch ext.Type {
		case wire.IPProtoHopByHop, wire.IPProtoDstOpts:
			if r := p.options(ext, off, mcast); r.kind != walkContinue {
				return r
			}
		case wire.IPProtoRouting:
			// RFC 8200 §4.4: an unrecognized routing type with segments
			// left is a parameter problem pointing at the type; with none
			// left the header is ignored. RFC 5095 §3: type 0 counts as
			// unrecognized. ustack executes no routing type.
			if rh, err := wire.ParseIPv6Routing(ext.Data); err == nil && rh.SegmentsLeft() != 0 {
				return problem(proto.DropUnsupported, wire.ICMPv6ErroneousHeader, off+2, &p.rhRefused)
			}
		case wire.IPProtoFragment:
			f := wire.IPv6Fragment(ext.Data)
			if reassembled {
				// A fragment header inside a reassembled packet: RFC 8200
				// §4.1 allows one.
				return dropResult(proto.DropFragInvalid, nil)
			}
			if f.IsAtomic() {
				// RFC 6946 §4: processed in isolation, never reassembled.
				res.atomic = true
				continue
			}
			if f.Offset() != 0 {
				return walkResult{kind: walkFragment, off: off, nhOff: nhOff}
			}
			fragOff, fragNH = off, nhOff
		}
	}
	switch err := it.Err(); {
	case errors.Is(err, wire.ErrBadHeaderChain):
		// RFC 8200 §4.1: hop-by-hop anywhere but first is an
		// unrecognized next header.
		return problem(proto.DropMalformed, wire.ICMPv6UnrecognizedNextHeader, wire.IPv6HeaderLen+it.BadOffset(), nil)
	case err != nil && short:
		return walkResult{kind: walkNeedMore}
	case err != nil && fragOff >= 0:
		return walkResult{kind: walkFragment, off: fragOff, nhOff: fragNH, incomplete: true}
	case err != nil:
		return dropResult(proto.DropTruncated, nil)
	}
	upper := it.Upper()
	off := wire.IPv6HeaderLen + it.UpperOffset()
	if fragOff >= 0 {
		// The upper-layer header must be in the first fragment too
		// (RFC 7112 §5), as much of it as the ports and types need.
		if off+minUpperLen(upper) > len(b) {
			if short {
				return walkResult{kind: walkNeedMore}
			}
			return walkResult{kind: walkFragment, off: fragOff, nhOff: fragNH, incomplete: true}
		}
		return walkResult{kind: walkFragment, off: fragOff, nhOff: fragNH}
	}
	if upper == wire.IPProtoNoNext {
		return walkResult{kind: walkNoNext}
	}
	return walkResult{kind: walkDeliver, upper: upper, off: off,
		nhOff: wire.IPv6HeaderLen + it.NextHeaderOffset(), atomic: res.atomic}
}

// processed reports the extension headers walk processes itself.
func processed(t wire.IPProtocol) bool {
	switch t {
	case wire.IPProtoHopByHop, wire.IPProtoDstOpts, wire.IPProtoRouting, wire.IPProtoFragment:
		return true
	}
	return false
}

// minUpperLen is how much of an upper-layer header a first fragment must
// hold (RFC 7112 §5: the whole header chain).
func minUpperLen(p wire.IPProtocol) int {
	switch p {
	case wire.IPProtoTCP:
		return 20
	case wire.IPProtoUDP, wire.IPProtoICMPv6, wire.IPProtoESP:
		return 8
	case wire.IPProtoNoNext:
		return 0
	}
	return 1
}

// options checks the options of a hop-by-hop or destination options
// header at offset off (RFC 8200 §4.2). Unrecognized options are handled
// by the two high bits of their type: skip, discard, discard and send a
// parameter problem (code 2, pointing at the option's type), or that
// only when the destination is not multicast.
func (p *Protocol) options(ext wire.IPv6Ext, off int, mcast bool) walkResult {
	it := wire.NewIPv6OptIter(ext.Options())
	pad, n := 0, 0
	for o, ok := it.Next(); ok; o, ok = it.Next() {
		if o.IsPadding() {
			if pad += o.Len(); pad > maxPadding {
				return dropResult(proto.DropBadOption, nil)
			}
			continue
		}
		pad = 0
		if n++; n > maxOptions {
			return dropResult(proto.DropBadOption, nil)
		}
		if ext.Type == wire.IPProtoHopByHop && o.Type == wire.IPv6OptRouterAlert {
			continue // RFC 2711: recognized; MLD messages carry it
		}
		ptr := off + 2 + o.Offset
		switch o.Action() {
		case wire.IPv6OptActionSkip:
			continue
		case wire.IPv6OptActionDiscard:
			return dropResult(proto.DropBadOption, nil)
		case wire.IPv6OptActionDiscardICMPUnicast:
			if mcast {
				return dropResult(proto.DropBadOption, nil)
			}
		}
		return problem(proto.DropBadOption, wire.ICMPv6UnrecognizedOption, ptr, nil)
	}
	if it.Err() != nil {
		// An option running past its header.
		return problem(proto.DropBadOption, wire.ICMPv6ErroneousHeader, off+2+it.BadOffset(), nil)
	}
	return walkResult{}
}

// act carries out walk's decision. It takes ownership of pkt; b is its
// pulled-up front.
func (p *Protocol) act(ifc proto.Interface, pkt *buf.Packet, b []byte, res walkResult, mcast bool, batch *proto.Batch) {
	if res.atomic {
		p.atomicFrags.Inc()
	}
	if res.counter != nil {
		res.counter.Inc()
	}
	h := wire.IPv6(b)
	switch res.kind {
	case walkDeliver:
		pkt.NetworkHeader = b[:res.off]
		pkt.TrimFront(res.off)
		info := proto.PacketInfo{Src: h.Src(), Dst: h.Dst(), Proto: res.upper, IfIndex: ifc.Index(),
			TTL: h.HopLimit(), TOS: h.TrafficClass(), Multicast: mcast, Batch: batch}
		p.deliver(ifc, info, pkt, res.nhOff)
	case walkFragment:
		p.fragmentInput(ifc, pkt, b, res, mcast)
	case walkNoNext:
		// RFC 8200 §4.7: nothing follows; the packet is done.
		p.noNext.Inc()
		pkt.Release()
	case walkDrop:
		p.drop(pkt, res.reason)
	case walkParamProblem:
		p.counters.Drop(res.reason)
		pkt.NetworkHeader = b[:wire.IPv6HeaderLen]
		p.icmp.sendError(ifc, pkt, wire.IPv6HeaderLen, wire.ICMPv6ParamProblem, res.code, uint32(res.ptr))
		pkt.Release()
	}
}

// deliver hands a packet's upper layer to its transport. It takes
// ownership of pkt, whose front is the upper-layer header and whose
// NetworkHeader is the IPv6 header and extension headers before it.
func (p *Protocol) deliver(ifc proto.Interface, info proto.PacketInfo, pkt *buf.Packet, nhOff int) {
	if info.Proto == wire.IPProtoICMPv6 {
		p.counters.Delivered.Inc()
		p.icmp.input(ifc, info, pkt)
		return
	}
	t := p.transports[info.Proto]
	if t == nil {
		// RFC 8200 §4: an unrecognized next header is a parameter
		// problem (code 1) pointing at the field that names it.
		p.counters.Drop(proto.DropUnknownProtocol)
		p.icmp.sendError(ifc, pkt, 0, wire.ICMPv6ParamProblem, wire.ICMPv6UnrecognizedNextHeader, uint32(nhOff))
		pkt.Release()
		return
	}
	p.counters.Delivered.Inc()
	if t.HandlePacket(zoneSrc(info, ifc), pkt) == proto.NoEndpoint {
		// RFC 4443 §3.1: port unreachable.
		p.icmp.sendError(ifc, pkt, 0, wire.ICMPv6DstUnreachable, wire.ICMPv6PortUnreachable, 0)
		pkt.Release()
	}
}

// zoneSrc gives a link-local source the receiving interface as its zone,
// as Go's net reports it ("fe80::1%eth0"): a link-local address means
// nothing without its link (RFC 4007 §6), so a socket that replies to the
// sender, or connects to it, reaches it through Route's zone rule. Only
// info handed to transports is zoned; transports strip zones from their
// lookup keys.
func zoneSrc(info proto.PacketInfo, ifc proto.Interface) proto.PacketInfo {
	if !info.Src.IsLinkLocalUnicast() || info.Src.Zone() != "" {
		return info
	}
	z := ifc.Name()
	if z == "" {
		z = strconv.Itoa(ifc.Index())
	}
	info.Src = info.Src.WithZone(z)
	return info
}
