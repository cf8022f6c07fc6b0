package ipv6

import (
	"net/netip"
	"time"
	"ustack/internal/ratelimit"

	"ustack/buf"
	"ustack/internal/stats"
	"ustack/proto"
	"ustack/wire"
)

// icmpState is the ICMPv6 half of the protocol (RFC 4443).
type icmpState struct {
	p        *Protocol
	counters proto.Counters // icmp6.*
	inTypes  proto.TypeCounters
	outTypes proto.TypeCounters

	limit ratelimit.Bucket // error messages (tunables icmp ratelimit, burst)
}

func (s *icmpState) init(p *Protocol) {
	s.p = p
}

func (s *icmpState) visit(v stats.Visitor) {
	s.counters.Visit("icmp6.", v)
	name := func(t uint8) string { return wire.ICMPv6Type(t).String() }
	s.inTypes.Visit("icmp6.in.", name, v)
	s.outTypes.Visit("icmp6.out.", name, v)
}

// isND reports the types of neighbour discovery and MLD, which go to the
// NDHandler.
func isND(t wire.ICMPv6Type) bool {
	return t >= wire.ICMPv6MLDQuery && t <= wire.ICMPv6Redirect || t == wire.ICMPv6MLDv2Report
}

// input handles an ICMPv6 message addressed to us (RFC 4443 §2.4). It
// takes ownership of pkt, whose front is the ICMPv6 header.
func (s *icmpState) input(ifc proto.Interface, info proto.PacketInfo, pkt *buf.Packet) {
	s.counters.InPackets.Inc()
	s.counters.InBytes.Add(uint64(pkt.Len()))
	b := pkt.Pullup(pkt.Len())
	m, err := wire.ParseICMPv6(b)
	if err != nil {
		s.drop(pkt, proto.DropTruncated)
		return
	}
	// RFC 4443 §2.3: over the pseudo-header too.
	if !pkt.Offload.CsumValid && !m.ChecksumValid(info.Src, info.Dst) {
		s.drop(pkt, proto.DropBadChecksum)
		return
	}
	s.inTypes[m.Type()].Inc()
	switch t := m.Type(); {
	case t == wire.ICMPv6EchoRequest:
		s.echoReply(ifc, info, m)
		pkt.Release()
	case isND(t):
		h := s.p.ndHandler()
		if h == nil {
			s.drop(pkt, proto.DropUnsupported)
			return
		}
		s.counters.Delivered.Inc()
		h.HandleND(ifc, info, pkt)
	case t.IsError():
		s.errorInput(info, m)
		pkt.Release()
	default:
		// Echo replies and unknown informational messages go to ICMPv6
		// endpoints (ping); RFC 4443 §2.4 (b): otherwise discarded.
		if tp := s.p.transports[wire.IPProtoICMPv6]; tp != nil {
			s.counters.Delivered.Inc()
			if tp.HandlePacket(zoneSrc(info, ifc), pkt) == proto.Consumed {
				return
			}
		}
		s.drop(pkt, proto.DropNoEndpoint)
	}
}

// replyIf is the interface a reply to peer must leave by: the one the
// request came in on for a link-scoped peer, else any (0).
func replyIf(peer netip.Addr, ifIndex int) int {
	if linkScoped(peer) {
		return ifIndex
	}
	return 0
}

// echoReply answers an echo request (RFC 4443 §4.2): same identifier,
// sequence and data, from the address it was sent to or, for a multicast
// request (answered unless net.inet6.icmp6.echo_multicast is off), from a
// unicast address of the interface it came in on.
func (s *icmpState) echoReply(ifc proto.Interface, info proto.PacketInfo, req wire.ICMPv6) {
	if info.Src.IsUnspecified() {
		s.counters.Drop(proto.DropBadSource)
		return
	}
	src := info.Dst
	if info.Multicast {
		if !s.p.mcastEcho.Load() {
			s.counters.Drop(proto.DropNotForUs)
			return
		}
		if src = s.p.selectSource(ifc, info.Src); !hasAddr(ifc, src) {
			s.counters.Drop(proto.DropNoRoute)
			return
		}
	}
	r, err := s.p.Route(info.Src, src, replyIf(info.Src, info.IfIndex))
	if err != nil {
		s.counters.Drop(proto.DropNoRoute)
		return
	}
	pkt := buf.New(s.p.MaxHeaderLen(), len(req))
	m := wire.ICMPv6(pkt.Bytes())
	copy(m, req)
	m.SetType(wire.ICMPv6EchoReply)
	m.SetCode(0)
	m.UpdateChecksum(r.Src, r.Dst)
	s.send(r, info.TOS, m.Type(), pkt)
}

func (s *icmpState) send(r proto.Route, tc uint8, t wire.ICMPv6Type, pkt *buf.Packet) {
	s.counters.OutPackets.Inc()
	s.counters.OutBytes.Add(uint64(pkt.Len()))
	s.outTypes[t].Inc()
	s.p.WritePacket(r, wire.IPProtoICMPv6, proto.WriteParams{TOS: tc}, pkt)
}

// errorInput delivers an ICMPv6 error to the transport whose packet it
// quotes (RFC 4443 §2.4 (b)), after walking the quoted extension headers
// to the upper layer. A packet too big lowers the path MTU (RFC 8201 §4).
func (s *icmpState) errorInput(info proto.PacketInfo, m wire.ICMPv6) {
	q, err := wire.ParseIPv6Quote(m.Payload())
	if err != nil {
		s.counters.Drop(proto.DropMalformed)
		return
	}
	if _, ok := s.p.ifs.LocalAddr(q.Src()); !ok {
		// Not about a packet we sent.
		s.counters.Drop(proto.DropNotForUs)
		return
	}
	rest := q[wire.IPv6HeaderLen:]
	it := wire.NewIPv6ExtIter(q.NextHeader(), rest)
	for ext, ok := it.Next(); ok; ext, ok = it.Next() {
		if ext.Type == wire.IPProtoFragment && wire.IPv6Fragment(ext.Data).Offset() != 0 {
			s.counters.Drop(proto.DropTruncated) // no upper-layer header quoted
			return
		}
	}
	if it.Err() != nil || len(rest)-it.UpperOffset() < 8 {
		s.counters.Drop(proto.DropTruncated)
		return
	}
	upper := it.Upper()
	e := proto.ICMPError{Type: uint8(m.Type()), Code: m.Code(), From: info.Src,
		Src: q.Src(), Dst: q.Dst(), Proto: upper, Quote: rest[it.UpperOffset():]}
	switch m.Type() {
	case wire.ICMPv6DstUnreachable:
		switch m.Code() {
		case wire.ICMPv6NoRoute:
			e.Kind = proto.ErrNetUnreachable
		case wire.ICMPv6AdminProhibited, wire.ICMPv6SrcPolicyFailed, wire.ICMPv6RejectRoute:
			e.Kind = proto.ErrAdminProhibited
		case wire.ICMPv6PortUnreachable:
			e.Kind = proto.ErrPortUnreachable
		case wire.ICMPv6SrcRoutingHdrErr:
			e.Kind = proto.ErrSourceRouteFailed
		default: // beyond scope, address unreachable, and the rest
			e.Kind = proto.ErrHostUnreachable
		}
	case wire.ICMPv6PacketTooBig:
		e.Kind = proto.ErrFragNeeded
		mtu := int(min(m.MTU(), 1<<20))
		e.MTU = s.p.pmtu.update(q.Dst(), mtu, s.p.clk.Now(), time.Duration(s.p.pmtuExpire.Load()))
	case wire.ICMPv6TimeExceeded:
		e.Kind = proto.ErrTimeExceeded
		if m.Code() == wire.ICMPv6ReassemblyExceeded {
			e.Kind = proto.ErrReassemblyTimeExceeded
		}
	case wire.ICMPv6ParamProblem:
		// An unrecognized next header is IPv6's protocol unreachable
		// (RFC 8200 §4).
		e.Kind = proto.ErrParamProblem
		if m.Code() == wire.ICMPv6UnrecognizedNextHeader {
			e.Kind = proto.ErrProtoUnreachable
		}
	default:
		// RFC 4443 §2.4 (b) would pass unknown errors up; the error
		// contract has no kind for them.
		s.counters.Drop(proto.DropUnsupported)
		return
	}
	t := s.p.transports[upper]
	if t == nil {
		s.counters.Drop(proto.DropNoEndpoint)
		return
	}
	s.counters.Delivered.Inc()
	t.HandleError(&e)
}

// sendError answers the packet in pkt with an ICMPv6 error. The invoking
// packet is pkt.NetworkHeader (starting with its IPv6 header) followed by
// pkt's bytes from skip on (skip = len(NetworkHeader) when the front is
// the IPv6 header; 0 when the front is what follows NetworkHeader). pkt
// stays the caller's. The error quotes as much as fits in 1280 bytes
// (RFC 4443 §2.4 (c)) and is not sent when RFC 4443 §2.4 (e) forbids it
// or the rate limit (§2.4 (f)) says no.
func (s *icmpState) sendError(in proto.Interface, pkt *buf.Packet, skip int, t wire.ICMPv6Type, code uint8, rest uint32) {
	hdr := pkt.NetworkHeader
	if len(hdr) < wire.IPv6HeaderLen {
		return
	}
	h := wire.IPv6(hdr)
	src, dst := h.Src(), h.Dst()
	// (e.2), (e.3): not about multicast, except packet too big and an
	// unrecognized option whose action asks for it.
	exempt := t == wire.ICMPv6PacketTooBig || t == wire.ICMPv6ParamProblem && code == wire.ICMPv6UnrecognizedOption
	if !exempt && (dst.IsMulticast() || pkt.Flags&(buf.FlagLinkBroadcast|buf.FlagLinkMulticast) != 0) {
		return
	}
	// (e.4): not to a source that names no single node.
	if src.IsUnspecified() || src.IsMulticast() {
		return
	}
	n := min(len(hdr)+pkt.Len()-skip, wire.ICMPv6ErrorQuoteLen)
	out := buf.New(s.p.MaxHeaderLen(), wire.ICMPv6HeaderLen+n)
	b := out.Bytes()
	quote := b[wire.ICMPv6HeaderLen:]
	if k := copy(quote, hdr); k < n {
		pkt.ReadAt(quote[k:], int64(skip))
	}
	// (e.1): never about an error message.
	if aboutError(quote) {
		out.Release()
		return
	}
	if !s.allow() {
		out.Release()
		s.counters.Drop(proto.DropRateLimited)
		return
	}
	// RFC 4443 §2.2: from the address the packet was sent to if it is
	// one of ours, else as for any packet to its source.
	var from netip.Addr
	if !dst.IsMulticast() {
		if _, ok := s.p.ifs.LocalAddr(dst); ok {
			from = dst
		}
	}
	ifIndex := replyIf(src, in.Index())
	r, err := s.p.Route(src, from, ifIndex)
	if err != nil && from.IsValid() {
		r, err = s.p.Route(src, netip.Addr{}, ifIndex)
	}
	if err != nil || r.Src.IsUnspecified() {
		out.Release()
		return
	}
	f := wire.ICMPv6Fields{Type: t, Code: code, Rest: rest}
	f.Encode(b)
	wire.ICMPv6(b).UpdateChecksum(r.Src, r.Dst)
	s.send(r, 0, t, out)
}

// aboutError reports whether the quoted packet q is an ICMPv6 error or a
// redirect (RFC 4443 §2.4 (e.1)). A quote it cannot read to its upper
// layer is not.
func aboutError(q []byte) bool {
	h := wire.IPv6(q)
	rest := q[wire.IPv6HeaderLen:]
	it := wire.NewIPv6ExtIter(h.NextHeader(), rest)
	for ext, ok := it.Next(); ok; ext, ok = it.Next() {
		if ext.Type == wire.IPProtoFragment && wire.IPv6Fragment(ext.Data).Offset() != 0 {
			return false
		}
	}
	if it.Err() != nil || it.Upper() != wire.IPProtoICMPv6 || it.UpperOffset() >= len(rest) {
		return false
	}
	t := wire.ICMPv6Type(rest[it.UpperOffset()])
	return t.IsError() || t == wire.ICMPv6Redirect
}

// allow applies the error rate limit (RFC 4443 §2.4 (f)).
func (s *icmpState) allow() bool {
	return s.limit.Allow(s.p.clk.Now(), float64(s.p.icmpRate.Load()), float64(s.p.icmpBurst.Load()))
}

func (s *icmpState) drop(pkt *buf.Packet, r proto.DropReason) {
	s.counters.Drop(r)
	pkt.Release()
}

// ResolutionFailed answers a packet whose next hop did not answer
// neighbour solicitations with destination unreachable, address
// unreachable (RFC 4861 §7.2.2, RFC 4443 §3.1), then releases it. It
// takes ownership of pkt, whose front is the IPv6 header.
func (p *Protocol) ResolutionFailed(ifc proto.Interface, pkt *buf.Packet) {
	p.counters.Drop(proto.DropNeighFailed)
	b := pkt.Pullup(min(pkt.Len(), wire.IPv6HeaderLen))
	if len(b) == wire.IPv6HeaderLen && b[0]>>4 == wire.IPv6Version {
		pkt.NetworkHeader = b
		p.icmp.sendError(ifc, pkt, wire.IPv6HeaderLen, wire.ICMPv6DstUnreachable, wire.ICMPv6AddrUnreachable, 0)
	}
	pkt.Release()
}
