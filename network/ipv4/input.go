package ipv4

import (
	"net/netip"

	"ustack/buf"
	"ustack/link"
	"ustack/proto"
	"ustack/wire"
)

// HandlePacket receives an IPv4 packet from ifc. It takes ownership of pkt,
// whose front is the IPv4 header. It validates the header (RFC 1122
// §3.2.1: version, header length, total length, checksum; RFC 791 options),
// then delivers, reassembles or forwards.
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
	// Only the header is made contiguous: pulling up more would copy
	// payload bytes that are often in a view of their own.
	b := pkt.Pullup(wire.IPv4MinHeaderLen)
	if b == nil {
		p.drop(pkt, proto.DropTruncated)
		return
	}
	if b[0]>>4 != wire.IPv4Version {
		p.drop(pkt, proto.DropBadVersion)
		return
	}
	hl := int(b[0]&0xf) * 4
	if hl < wire.IPv4MinHeaderLen || hl > pkt.Len() {
		p.drop(pkt, proto.DropBadHeaderLen)
		return
	}
	if hl > len(b) {
		b = pkt.Pullup(hl)
	}
	b = b[:hl]
	h := wire.IPv4(b)
	tl := h.TotalLen()
	if tl < hl || tl > pkt.Len() {
		p.drop(pkt, proto.DropBadLength)
		return
	}
	if !h.ChecksumValid() {
		p.drop(pkt, proto.DropBadChecksum)
		return
	}
	if opts := h.Options(); len(opts) > 0 {
		if r := p.checkOptions(opts); r != proto.DropNone {
			p.drop(pkt, r)
			return
		}
	}
	// Link-layer padding goes (Ethernet pads short frames to 60 bytes).
	pkt.Truncate(tl)
	src, dst := h.Src(), h.Dst()
	if !validSource(src, ifc) {
		p.drop(pkt, proto.DropBadSource)
		return
	}
	if h.TTL() == 0 {
		// RFC 1122 §3.2.1.7: a host must not discard a datagram just
		// for its TTL; counted, delivered if it is ours.
		p.ttlZero.Inc()
	}

	local, bcast, mcast := p.classify(ifc, dst)
	if !local {
		if pkt.Flags&(buf.FlagLinkBroadcast|buf.FlagLinkMulticast) != 0 || dst.IsMulticast() {
			// RFC 1812 §5.3.4: not forwarded from a link broadcast.
			p.drop(pkt, proto.DropNotForUs)
			return
		}
		if !p.forwarding.Load() {
			p.drop(pkt, proto.DropForwardingOff)
			return
		}
		p.forward(ifc, h, pkt)
		return
	}
	pkt.NetworkHeader = h.Header()
	if h.IsFragment() {
		p.fragsIn.Inc()
		pkt = p.reassemble(ifc, h, pkt)
		if pkt == nil {
			return
		}
		// pkt now holds the whole datagram's payload, and NetworkHeader
		// the first fragment's header.
	} else {
		pkt.TrimFront(hl)
	}
	h = wire.IPv4(pkt.NetworkHeader)
	info := proto.PacketInfo{Src: src, Dst: dst, Proto: h.Protocol(), IfIndex: ifc.Index(),
		TTL: h.TTL(), TOS: h.TOS(), Broadcast: bcast, Multicast: mcast, Batch: batch}
	p.deliver(ifc, info, pkt)
}

// deliver hands a whole datagram's payload to its transport. It takes
// ownership of pkt.
func (p *Protocol) deliver(ifc proto.Interface, info proto.PacketInfo, pkt *buf.Packet) {
	if info.Proto == wire.IPProtoICMP {
		p.counters.Delivered.Inc()
		p.icmp.input(ifc, info, pkt)
		return
	}
	t := p.transports[info.Proto]
	if t == nil {
		// RFC 1122 §3.2.2.1: protocol unreachable.
		p.counters.Drop(proto.DropUnknownProtocol)
		p.icmp.sendError(ifc, pkt, 0, wire.ICMPv4DstUnreachable, wire.ICMPv4ProtoUnreachable, 0)
		pkt.Release()
		return
	}
	p.counters.Delivered.Inc()
	if t.HandlePacket(info, pkt) == proto.NoEndpoint {
		p.icmp.sendError(ifc, pkt, 0, wire.ICMPv4DstUnreachable, wire.ICMPv4PortUnreachable, 0)
		pkt.Release()
	}
}

// classify tells whether dst is for this stack on ifc: one of our addresses
// (on any interface: the weak host model of RFC 1122 §3.3.4.2, as Linux),
// a broadcast address of ifc, or a multicast group joined on ifc.
func (p *Protocol) classify(ifc proto.Interface, dst netip.Addr) (local, bcast, mcast bool) {
	if _, ok := p.ifs.LocalAddr(dst); ok {
		return true, false, false
	}
	if dst == limitedBroadcast || p.ifs.Broadcast(ifc.Index(), dst) {
		return true, true, false
	}
	if dst.IsMulticast() {
		return p.groups.joined(ifc.Index(), dst), false, true
	}
	return false, false, false
}

// validSource rejects martian sources (RFC 1812 §5.3.7, RFC 1122 §3.2.1.3):
// broadcast, multicast, class E, and loopback addresses arriving on a
// non-loopback interface. 0.0.0.0 is allowed (DHCP clients use it).
func validSource(src netip.Addr, ifc proto.Interface) bool {
	a := src.As4()
	switch {
	case src == limitedBroadcast, src.IsMulticast(), a[0] >= 240:
		return false
	case src.IsLoopback():
		return ifc.Capabilities().Has(link.CapLoopback)
	}
	return true
}

// checkOptions validates the options (RFC 791 §3.1) and applies policy:
// source-route options are refused unless accept_sourceroute is on (as
// Linux and the BSDs do by default).
func (p *Protocol) checkOptions(opts []byte) proto.DropReason {
	for i := 0; i < len(opts); {
		t := opts[i]
		switch t {
		case 0: // end of option list
			return proto.DropNone
		case 1: // no operation
			i++
			continue
		}
		if i+1 >= len(opts) {
			return proto.DropBadOption
		}
		n := int(opts[i+1])
		if n < 2 || i+n > len(opts) {
			return proto.DropBadOption
		}
		switch t {
		case 0x83, 0x89: // LSRR, SSRR
			if !p.acceptSrcRte.Load() {
				return proto.DropBadOption
			}
			if n < 3 {
				return proto.DropBadOption
			}
		case 0x07, 0x44: // record route, timestamp: need a pointer byte
			if n < 3 {
				return proto.DropBadOption
			}
		}
		i += n
	}
	return proto.DropNone
}

// forward sends a packet not addressed to us on towards its destination
// (RFC 1812 §5.2, §5.3). It takes ownership of pkt, whose front is the IPv4
// header h.
func (p *Protocol) forward(in proto.Interface, h wire.IPv4, pkt *buf.Packet) {
	pkt.NetworkHeader = h.Header()
	if h.TTL() <= 1 {
		// RFC 1812 §5.3.1: time exceeded in transit.
		p.counters.Drop(proto.DropTTLExceeded)
		p.icmp.sendError(in, pkt, h.HeaderLen(), wire.ICMPv4TimeExceeded, wire.ICMPv4TTLExceeded, 0)
		pkt.Release()
		return
	}
	dst := h.Dst()
	r, err := p.Route(dst, netip.Addr{}, 0)
	if err != nil || r.Local {
		p.counters.Drop(proto.DropNoRoute)
		p.icmp.sendError(in, pkt, h.HeaderLen(), wire.ICMPv4DstUnreachable, wire.ICMPv4NetUnreachable, 0)
		pkt.Release()
		return
	}
	if r.Broadcast {
		// RFC 2644: directed broadcasts are not forwarded by default.
		p.drop(pkt, proto.DropNotForUs)
		return
	}
	h.DecrementTTL()
	p.forwarded.Inc()
	pkt.IfIndex = r.IfIndex
	pkt.Flags = 0
	if pkt.Len() <= r.MTU {
		p.output(r.IfIndex, r.NextHop, pkt)
		return
	}
	if h.DontFragment() {
		// RFC 1191 §4: fragmentation needed, with the next-hop MTU.
		p.counters.Drop(proto.DropFragNeeded)
		p.icmp.sendError(in, pkt, h.HeaderLen(), wire.ICMPv4DstUnreachable, wire.ICMPv4FragNeeded, uint32(r.MTU))
		pkt.Release()
		return
	}
	f := wire.IPv4Fields{TOS: h.TOS(), ID: h.ID(), Flags: h.Flags(), FragOff: h.FragmentOffset(),
		TTL: h.TTL(), Protocol: h.Protocol(), Src: h.Src(), Dst: dst}
	if o := h.Options(); len(o) > 0 {
		f.Options = append([]byte(nil), o...) // the header's bytes are rewritten below
	}
	pkt.TrimFront(h.HeaderLen())
	p.fragment(&f, pkt, r.MTU, func(frag *buf.Packet) error {
		p.fragsOut.Inc()
		return p.output(r.IfIndex, r.NextHop, frag)
	})
}

// drop counts and releases pkt.
func (p *Protocol) drop(pkt *buf.Packet, r proto.DropReason) {
	p.counters.Drop(r)
	pkt.Release()
}
