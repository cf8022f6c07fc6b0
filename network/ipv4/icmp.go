package ipv4

import (
	"encoding/binary"
	"net/netip"
	"ustack/internal/ratelimit"

	"ustack/buf"
	"ustack/internal/stats"
	"ustack/proto"
	"ustack/wire"
)

// maxQuote is the most of the offending datagram an ICMP error carries, so
// the error fits in 576 bytes (RFC 1812 §4.3.2.3).
const maxQuote = 576 - wire.IPv4MinHeaderLen - wire.ICMPv4HeaderLen

// icmpState is the ICMPv4 half of the protocol.
type icmpState struct {
	p        *Protocol
	counters proto.Counters // icmp.*
	inTypes  proto.TypeCounters
	outTypes proto.TypeCounters

	limit ratelimit.Bucket // error messages (tunables icmp ratelimit, burst)
}

func (s *icmpState) init(p *Protocol) {
	s.p = p
}

func (s *icmpState) visit(v stats.Visitor) {
	s.counters.Visit("icmp.", v)
	name := func(t uint8) string { return wire.ICMPv4Type(t).String() }
	s.inTypes.Visit("icmp.in.", name, v)
	s.outTypes.Visit("icmp.out.", name, v)
}

// input handles an ICMPv4 message addressed to us (RFC 792). It takes
// ownership of pkt, whose front is the ICMP header.
func (s *icmpState) input(ifc proto.Interface, info proto.PacketInfo, pkt *buf.Packet) {
	s.counters.InPackets.Inc()
	s.counters.InBytes.Add(uint64(pkt.Len()))
	b := pkt.Pullup(pkt.Len())
	m, err := wire.ParseICMPv4(b)
	if err != nil {
		s.drop(pkt, proto.DropTruncated)
		return
	}
	if !pkt.Offload.CsumValid && !m.ChecksumValid() {
		s.drop(pkt, proto.DropBadChecksum)
		return
	}
	s.inTypes[m.Type()].Inc()
	switch t := m.Type(); {
	case t == wire.ICMPv4Echo:
		s.echoReply(info, m)
		pkt.Release()
	case t.IsError():
		s.errorInput(info, m)
		pkt.Release()
	default:
		// Echo replies and the rest go to ICMP endpoints (ping).
		if tp := s.p.transports[wire.IPProtoICMP]; tp != nil {
			s.counters.Delivered.Inc()
			if tp.HandlePacket(info, pkt) == proto.Consumed {
				return
			}
		}
		s.drop(pkt, proto.DropNoEndpoint)
	}
}

// echoReply answers an echo request (RFC 792, RFC 1122 §3.2.2.6): same
// identifier, sequence and data, from the address it was sent to.
func (s *icmpState) echoReply(info proto.PacketInfo, req wire.ICMPv4) {
	if (info.Broadcast || info.Multicast) && !s.p.bmcastEcho.Load() {
		s.counters.Drop(proto.DropNotForUs)
		return
	}
	src := info.Dst
	if info.Broadcast || info.Multicast {
		src = netip.Addr{}
	}
	r, err := s.p.Route(info.Src, src, 0)
	if err != nil {
		s.counters.Drop(proto.DropNoRoute)
		return
	}
	pkt := buf.New(s.p.MaxHeaderLen(), len(req))
	m := wire.ICMPv4(pkt.Bytes())
	copy(m, req)
	m.SetType(wire.ICMPv4EchoReply)
	m.UpdateChecksum()
	s.send(r, info.TOS, m.Type(), pkt)
}

func (s *icmpState) send(r proto.Route, tos uint8, t wire.ICMPv4Type, pkt *buf.Packet) {
	s.counters.OutPackets.Inc()
	s.counters.OutBytes.Add(uint64(pkt.Len()))
	s.outTypes[t].Inc()
	s.p.WritePacket(r, wire.IPProtoICMP, proto.WriteParams{TOS: tos}, pkt)
}

// errorInput delivers an ICMP error to the transport whose packet it quotes
// (RFC 1122 §3.2.2: the quoted IP header and at least 8 bytes).
func (s *icmpState) errorInput(info proto.PacketInfo, m wire.ICMPv4) {
	q := m.Payload()
	if len(q) < wire.IPv4MinHeaderLen || q[0]>>4 != 4 {
		s.counters.Drop(proto.DropMalformed)
		return
	}
	hl := int(q[0]&0xf) * 4
	if hl < wire.IPv4MinHeaderLen || len(q) < hl+8 {
		s.counters.Drop(proto.DropTruncated)
		return
	}
	inner := wire.IPv4(q)
	if _, ok := s.p.ifs.LocalAddr(inner.Src()); !ok {
		// Not about a packet we sent.
		s.counters.Drop(proto.DropNotForUs)
		return
	}
	e := proto.ICMPError{Type: uint8(m.Type()), Code: m.Code(), From: info.Src,
		Src: inner.Src(), Dst: inner.Dst(), Proto: inner.Protocol(), Quote: q[hl:]}
	switch m.Type() {
	case wire.ICMPv4DstUnreachable:
		switch m.Code() {
		case wire.ICMPv4NetUnreachable, 6, 9, 11:
			e.Kind = proto.ErrNetUnreachable
		case wire.ICMPv4ProtoUnreachable:
			e.Kind = proto.ErrProtoUnreachable
		case wire.ICMPv4PortUnreachable:
			e.Kind = proto.ErrPortUnreachable
		case wire.ICMPv4FragNeeded:
			e.Kind = proto.ErrFragNeeded
			e.MTU = m.MTU()
		case 5:
			e.Kind = proto.ErrSourceRouteFailed
		case 9 + 1, wire.ICMPv4AdminProhibited, 14, 15:
			e.Kind = proto.ErrAdminProhibited
		default:
			e.Kind = proto.ErrHostUnreachable
		}
	case wire.ICMPv4TimeExceeded:
		e.Kind = proto.ErrTimeExceeded
		if m.Code() == wire.ICMPv4ReassemblyExceeded {
			e.Kind = proto.ErrReassemblyTimeExceeded
		}
	case wire.ICMPv4ParamProblem:
		e.Kind = proto.ErrParamProblem
	default:
		// Redirects and source quench are not acted on here.
		s.counters.Drop(proto.DropUnsupported)
		return
	}
	t := s.p.transports[inner.Protocol()]
	if t == nil {
		s.counters.Drop(proto.DropNoEndpoint)
		return
	}
	s.counters.Delivered.Inc()
	t.HandleError(&e)
}

// sendError answers the datagram in pkt with an ICMP error. pkt's front is
// skip bytes into the datagram (skip = header length when the front is the
// IP header; 0 when it is the transport header, with pkt.NetworkHeader
// set). pkt stays the caller's. The error is not sent when RFC 1122
// §3.2.2 / RFC 1812 §4.3.2.7 forbid it or the rate limit says no.
func (s *icmpState) sendError(in proto.Interface, pkt *buf.Packet, skip int, t wire.ICMPv4Type, code uint8, rest uint32) {
	hdr := wire.IPv4(pkt.NetworkHeader)
	if len(hdr) < wire.IPv4MinHeaderLen {
		return
	}
	hl := hdr.HeaderLen()
	src, dst := hdr.Src(), hdr.Dst()
	switch {
	case pkt.Flags&(buf.FlagLinkBroadcast|buf.FlagLinkMulticast) != 0,
		dst == limitedBroadcast, dst.IsMulticast(), s.p.ifs.Broadcast(in.Index(), dst),
		src.IsUnspecified(), src == limitedBroadcast, src.IsMulticast(), src.As4()[0] >= 240,
		hdr.FragmentOffset() != 0:
		return
	}
	// The datagram's bytes after its header, from the packet.
	var first [1]byte
	if hdr.Protocol() == wire.IPProtoICMP {
		if n, _ := pkt.ReadAt(first[:], int64(skip)); n == 1 && wire.ICMPv4Type(first[0]).IsError() {
			return // never an error about an error
		}
	}
	if !s.allow() {
		s.counters.Drop(proto.DropRateLimited)
		return
	}
	r, err := s.p.Route(src, netip.Addr{}, 0)
	if err != nil {
		return
	}
	dataLen := min(pkt.Len()-skip, maxQuote-hl)
	if dataLen < 0 {
		dataLen = 0
	}
	out := buf.New(s.p.MaxHeaderLen(), wire.ICMPv4HeaderLen+hl+dataLen)
	b := out.Bytes()
	f := wire.ICMPv4Fields{Type: t, Code: code, Rest: rest}
	f.Encode(b)
	copy(b[wire.ICMPv4HeaderLen:], hdr[:hl])
	pkt.ReadAt(b[wire.ICMPv4HeaderLen+hl:], int64(skip))
	wire.ICMPv4(b).UpdateChecksum()
	s.send(r, 0, t, out)
}

// allow applies the error rate limit (RFC 1812 §4.3.2.8).
func (s *icmpState) allow() bool {
	return s.limit.Allow(s.p.clk.Now(), float64(s.p.icmpRate.Load()), float64(s.p.icmpBurst.Load()))
}

func (s *icmpState) drop(pkt *buf.Packet, r proto.DropReason) {
	s.counters.Drop(r)
	pkt.Release()
}

// hostUnreachable answers a packet that waited for a neighbour that never
// answered (RFC 1122 §2.3.2.2). pkt's front is its IPv4 header; pkt stays
// the caller's.
func (s *icmpState) hostUnreachable(in proto.Interface, pkt *buf.Packet) {
	// Only the header is pulled up: the quote may be longer than what is
	// contiguous, so its total length is not checked against b.
	b := pkt.Pullup(min(pkt.Len(), wire.IPv4MaxHeaderLen))
	h, err := wire.ParseIPv4Quote(b)
	if err != nil || h.HeaderLen() > len(b) {
		return
	}
	pkt.NetworkHeader = h.Header()
	s.sendError(in, pkt, h.HeaderLen(), wire.ICMPv4DstUnreachable, wire.ICMPv4HostUnreachable, 0)
}

// ResolutionFailed answers a packet whose next hop could not be resolved
// with ICMP host unreachable, then releases it. It takes ownership of pkt,
// whose front is the IPv4 header.
func (p *Protocol) ResolutionFailed(ifc proto.Interface, pkt *buf.Packet) {
	p.counters.Drop(proto.DropNeighFailed)
	p.icmp.hostUnreachable(ifc, pkt)
	pkt.Release()
}

var _ = binary.BigEndian
