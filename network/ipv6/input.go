package ipv6

import (
	"net/netip"

	"ustack/buf"
	"ustack/link"
	"ustack/proto"
	"ustack/wire"
)

// HandlePacket receives an IPv6 packet from ifc. It takes ownership of pkt,
// whose front is the IPv6 header. It validates the fixed header (RFC 8200
// §3: version, payload length within the packet; RFC 4291 for the
// addresses), then walks the extension headers and delivers, or forwards.
func (p *Protocol) HandlePacket(ifc proto.Interface, pkt *buf.Packet) {
	p.HandlePacketBatch(ifc, pkt, nil)
}

// HandlePacketBatch is HandlePacket for a packet of the received batch b
// (may be nil), which is passed on to the transport in PacketInfo.Batch
// (the stack calls it for every received frame). It takes ownership of
// pkt.
func (p *Protocol) HandlePacketBatch(ifc proto.Interface, pkt *buf.Packet, batch *proto.Batch) {
	p.counters.InPackets.Inc()
	p.counters.InBytes.Add(uint64(pkt.Len()))
	b := pkt.Pullup(min(pkt.Len(), wire.IPv6HeaderLen))
	if len(b) < wire.IPv6HeaderLen {
		p.drop(pkt, proto.DropTruncated)
		return
	}
	if b[0]>>4 != wire.IPv6Version {
		p.drop(pkt, proto.DropBadVersion)
		return
	}
	h := wire.IPv6(b)
	plen := h.PayloadLen()
	if plen == 0 && h.NextHeader() == wire.IPProtoHopByHop {
		// A jumbogram (RFC 2675), or a hop-by-hop header with no room:
		// ustack has no link whose MTU needs jumbograms.
		p.drop(pkt, proto.DropUnsupported)
		return
	}
	if wire.IPv6HeaderLen+plen > pkt.Len() {
		p.drop(pkt, proto.DropBadLength)
		return
	}
	// Link-layer padding goes.
	pkt.Truncate(wire.IPv6HeaderLen + plen)
	src, dst := h.Src(), h.Dst()
	loop := isLoopback(ifc, pkt)
	if r := checkAddrs(src, dst, loop); r != proto.DropNone {
		p.drop(pkt, r)
		return
	}
	if h.HopLimit() == 0 {
		// Only a forwarder discards for the hop limit (RFC 8200 §3);
		// counted, delivered if it is ours.
		p.hlimZero.Inc()
	}
	local, mcast := p.classify(ifc, dst, loop)
	if !local {
		if mcast || pkt.Flags&(buf.FlagLinkBroadcast|buf.FlagLinkMulticast) != 0 {
			// No multicast routing; a unicast packet in a link
			// multicast frame is not forwarded either.
			p.drop(pkt, proto.DropNotForUs)
			return
		}
		if !p.forwarding.Load() {
			p.drop(pkt, proto.DropForwardingOff)
			return
		}
		p.forward(ifc, pkt)
		return
	}
	p.receive(ifc, pkt, mcast, false, batch)
}

func isLoopback(ifc proto.Interface, pkt *buf.Packet) bool {
	return pkt.Flags&buf.FlagLoopback != 0 || ifc.Capabilities().Has(link.CapLoopback)
}

// checkAddrs rejects addresses no packet may carry on the wire: a
// multicast source (RFC 4291 §2.7), the loopback address or an
// IPv4-mapped address outside the stack (RFC 4291 §2.5.3, §2.5.5.2), an
// unspecified or reserved-scope destination, and interface-local
// multicast from a link (RFC 4291 §2.7). The unspecified source is allowed:
// duplicate address detection uses it (RFC 4862 §5.4.2).
func checkAddrs(src, dst netip.Addr, loop bool) proto.DropReason {
	switch {
	case src.IsMulticast(), src.Is4In6(), src.IsLoopback() && !loop:
		return proto.DropBadSource
	case dst.IsUnspecified(), dst.Is4In6():
		return proto.DropMalformed
	case dst.IsLoopback() && !loop:
		return proto.DropNotForUs
	case dst.IsMulticast():
		switch mcastScope(dst) {
		case 0, 0xf: // reserved (RFC 4291 §2.7)
			return proto.DropMalformed
		case scopeInterface:
			if !loop {
				return proto.DropNotForUs
			}
		}
	}
	return proto.DropNone
}

// classify tells whether dst is for this stack on ifc: one of our unicast
// addresses (link-local ones only on the interface that has them, RFC 4007
// §5; others on any interface: the weak host model, as Linux), or a
// multicast group joined on ifc (all-nodes and the solicited-node groups
// of ifc's addresses always are).
func (p *Protocol) classify(ifc proto.Interface, dst netip.Addr, loop bool) (local, mcast bool) {
	if dst.IsMulticast() {
		return p.groups.joined(ifc, dst), true
	}
	if dst.IsLinkLocalUnicast() && !loop {
		return hasAddr(ifc, dst), false
	}
	_, ok := p.ifs.LocalAddr(dst)
	return ok, false
}

// hasAddr reports whether a is one of ifc's addresses.
func hasAddr(ifc proto.Interface, a netip.Addr) bool {
	for _, pf := range ifc.Addrs() {
		if pf.Addr() == a {
			return true
		}
	}
	return false
}

// forward sends a packet not addressed to us on towards its destination
// (RFC 8200 §3 hop limit; RFC 4443 §3 errors; never fragmented: RFC 8200
// §5 leaves that to the source). It takes ownership of pkt, whose front is
// the IPv6 header. Extension headers are not examined (RFC 8200 §4: not
// even hop-by-hop, unless configured to).
func (p *Protocol) forward(in proto.Interface, pkt *buf.Packet) {
	b := pkt.Pullup(wire.IPv6HeaderLen)
	h := wire.IPv6(b)
	pkt.NetworkHeader = b
	src, dst := h.Src(), h.Dst()
	switch {
	case src.IsUnspecified():
		// RFC 4291 §2.5.2: never forwarded.
		p.drop(pkt, proto.DropBadSource)
		return
	case dst.IsLinkLocalUnicast():
		// RFC 4291 §2.5.6: link-local packets stay on their link.
		p.drop(pkt, proto.DropNotForUs)
		return
	}
	if h.HopLimit() <= 1 {
		// RFC 4443 §3.3: hop limit exceeded in transit.
		p.counters.Drop(proto.DropTTLExceeded)
		p.icmp.sendError(in, pkt, wire.IPv6HeaderLen, wire.ICMPv6TimeExceeded, wire.ICMPv6HopLimitExceeded, 0)
		pkt.Release()
		return
	}
	r, ok := p.resolve(dst, 0)
	if !ok || r.Local {
		p.counters.Drop(proto.DropNoRoute)
		p.icmp.sendError(in, pkt, wire.IPv6HeaderLen, wire.ICMPv6DstUnreachable, wire.ICMPv6NoRoute, 0)
		pkt.Release()
		return
	}
	if src.IsLinkLocalUnicast() && r.IfIndex != in.Index() {
		// RFC 4443 §3.1: beyond the scope of the source address.
		p.counters.Drop(proto.DropBadSource)
		p.icmp.sendError(in, pkt, wire.IPv6HeaderLen, wire.ICMPv6DstUnreachable, wire.ICMPv6BeyondScope, 0)
		pkt.Release()
		return
	}
	if pkt.Len() > r.MTU {
		// RFC 4443 §3.2, RFC 8201: packet too big with the next-hop MTU.
		p.counters.Drop(proto.DropFragNeeded)
		p.icmp.sendError(in, pkt, wire.IPv6HeaderLen, wire.ICMPv6PacketTooBig, 0, uint32(r.MTU))
		pkt.Release()
		return
	}
	h.SetHopLimit(h.HopLimit() - 1)
	p.forwarded.Inc()
	pkt.IfIndex = r.IfIndex
	pkt.Flags = 0
	p.output(r.IfIndex, r.NextHop, pkt)
}
