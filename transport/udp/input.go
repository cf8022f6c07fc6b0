package udp

// Receive path:
//
//	HandlePacket: header → length (trim to UDP length) → checksum
//	  → demux: connected 4-tuple → bound (addr, port) → wildcard (port)
//	           → IPv4 only: the dual-stack IPv6 wildcard (sender mapped)
//	           broadcast/multicast: every matching endpoint (clones)
//	  → strip header → endpoint queue (bounded, drop queue_full) → Readable
//
//	HandleError: quoted ports → connected endpoint → Err (hard errors only)

import (
	"encoding/binary"
	"net/netip"

	"ustack/buf"
	"ustack/link/offload"
	"ustack/proto"
	"ustack/wire"
)

// HandlePacket receives a datagram whose front is the UDP header. It takes
// ownership of pkt unless it returns proto.NoEndpoint (no endpoint is bound
// to the destination port), in which case pkt is unchanged and the caller
// answers with ICMP port unreachable where the rules allow.
func (p *Protocol) HandlePacket(info proto.PacketInfo, pkt *buf.Packet) proto.Verdict {
	p.stats.InPackets.Inc()
	p.stats.InBytes.Add(uint64(pkt.Len()))
	hb := pkt.Pullup(wire.UDPHeaderLen)
	if hb == nil {
		return p.drop(pkt, proto.DropTruncated)
	}
	h := wire.UDP(hb)
	// RFC 768: Length covers header and data; the IP payload must hold
	// it, and bytes past it are not part of the datagram.
	n := h.Length()
	if n < wire.UDPHeaderLen || n > pkt.Len() {
		return p.drop(pkt, proto.DropBadLength)
	}
	if !p.checksumOK(info, pkt, h, n) {
		return p.drop(pkt, proto.DropBadChecksum)
	}
	// The demux keys carry no zone; from keeps the zone the network
	// layer gave a link-local sender, for the endpoint to reply through.
	local := netip.AddrPortFrom(info.Dst.WithZone(""), h.DstPort())
	from := netip.AddrPortFrom(info.Src, h.SrcPort())

	p.mu.RLock()
	if info.Broadcast || info.Multicast || info.Dst.IsMulticast() {
		return p.deliverAll(pkt, n, local, from)
	}
	e := p.lookup(local, from)
	if e == nil {
		p.mu.RUnlock()
		p.stats.Drop(proto.DropNoEndpoint)
		return proto.NoEndpoint
	}
	p.mu.RUnlock()
	p.strip(pkt, n)
	p.deliver(e, pkt, e.peer(from))
	return proto.Consumed
}

// dual reports whether e takes IPv4 datagrams as a dual-stack IPv6
// wildcard endpoint.
func (e *Endpoint) dual() bool {
	return !e.v6only && e.addrs.Load().local.Addr() == netip.IPv6Unspecified()
}

// peer is how e sees the sender from: IPv4-mapped on a dual-stack
// endpoint, as Go's net reports it.
func (e *Endpoint) peer(from netip.AddrPort) netip.AddrPort {
	if from.Addr().Is4() && e.dual() {
		return netip.AddrPortFrom(netip.AddrFrom16(from.Addr().As16()), from.Port())
	}
	return from
}

// lookup finds the endpoint for a unicast datagram: the connected endpoint
// of the exact 4-tuple, else an unconnected one bound to the destination
// address, else one bound to the wildcard. Among equals the latest bound
// wins. p.mu is held.
func (p *Protocol) lookup(local, from netip.AddrPort) *Endpoint {
	if s := p.conn[tupleOf(local, from)]; len(s) > 0 {
		return s[len(s)-1]
	}
	if s := p.bound[local]; len(s) > 0 {
		return s[len(s)-1]
	}
	if s := p.bound[netip.AddrPortFrom(wildcard(local.Addr()), local.Port())]; len(s) > 0 {
		return s[len(s)-1]
	}
	if local.Addr().Is4() {
		s := p.bound[netip.AddrPortFrom(netip.IPv6Unspecified(), local.Port())]
		for i := len(s) - 1; i >= 0; i-- {
			if !s[i].v6only {
				return s[i]
			}
		}
	}
	return nil
}

// deliverAll gives a broadcast or multicast datagram to every endpoint on
// the port bound to the destination or the wildcard and, if connected,
// connected to the sender (RFC 1122 §4.1.3.6 leaves the rule to the host;
// this is the BSD and Linux one). p.mu is held for reading; deliverAll
// releases it.
func (p *Protocol) deliverAll(pkt *buf.Packet, n int, local, from netip.AddrPort) proto.Verdict {
	var arr [8]*Endpoint
	eps := arr[:0]
	for _, e := range p.ports[local.Port()] {
		a := e.addrs.Load()
		if la := a.local.Addr(); la != local.Addr() && !(la.IsUnspecified() && la.Is4() == local.Addr().Is4()) &&
			!(local.Addr().Is4() && e.dual()) {
			continue
		}
		if a.remote.IsValid() && unzone(a.remote) != unzone(from) {
			continue
		}
		eps = append(eps, e)
	}
	p.mu.RUnlock()
	if len(eps) == 0 {
		p.stats.Drop(proto.DropNoEndpoint)
		return proto.NoEndpoint
	}
	p.strip(pkt, n)
	for _, e := range eps[:len(eps)-1] {
		p.deliver(e, pkt.Clone(), e.peer(from))
	}
	last := eps[len(eps)-1]
	p.deliver(last, pkt, last.peer(from))
	return proto.Consumed
}

// strip cuts pkt to the UDP length and removes the header, keeping it in
// pkt.TransportHeader.
func (p *Protocol) strip(pkt *buf.Packet, n int) {
	pkt.Truncate(n)
	pkt.TransportHeader = pkt.Pullup(wire.UDPHeaderLen)
	pkt.TrimFront(wire.UDPHeaderLen)
}

// deliver queues pkt on e, taking ownership, and counts the outcome. A
// datagram is accepted while the queue holds less than the receive buffer
// (so the buffer may be overshot by one datagram, as Linux does).
func (p *Protocol) deliver(e *Endpoint, pkt *buf.Packet, from netip.AddrPort) {
	if e.rx.Push(pkt, from) {
		p.stats.Delivered.Inc()
	} else {
		p.stats.Drop(proto.DropQueueFull)
	}
}

func (p *Protocol) drop(pkt *buf.Packet, r proto.DropReason) proto.Verdict {
	p.stats.Drop(r)
	pkt.Release()
	return proto.Consumed
}

// checksumOK verifies the checksum over the pseudo-header and the first n
// bytes of pkt (RFC 768; RFC 1122 §4.1.3.4). A zero field means the
// sender computed none, which IPv4 allows and IPv6 does not (RFC 8200
// §8.1). A checksum the link verified, or a partial one from a local
// kernel peer, is trusted.
func (p *Protocol) checksumOK(info proto.PacketInfo, pkt *buf.Packet, h wire.UDP, n int) bool {
	if h.Checksum() == 0 {
		return info.Dst.Is4()
	}
	if pkt.Offload.CsumValid || pkt.Offload.NeedsCsum {
		return true
	}
	sum := wire.PseudoHeaderChecksum(wire.IPProtoUDP, info.Src, info.Dst, n)
	return wire.ChecksumCombine(sum, offload.Sum(pkt, 0, n)) == 0xffff
}

// HandleError delivers an ICMP error about a datagram this protocol sent.
// As Linux does without IP_RECVERR, only hard errors (RFC 1122 §4.2.3.9:
// protocol and port unreachable, administratively prohibited, parameter
// problem) reach an endpoint, and only a connected one (RFC 1122 §4.1.3.3
// leaves the choice to the host); the next Recv-side Err or WriteTo
// reports it.
func (p *Protocol) HandleError(ie *proto.ICMPError) {
	if len(ie.Quote) < 4 {
		return
	}
	// RFC 1122 §4.1.3.3 passes ICMP errors up. Like Linux without
	// IP_RECVERR, a connected endpoint sees the hard ones: host, protocol
	// and port unreachable, prohibited, parameter problem, and
	// fragmentation needed (EMSGSIZE).
	switch ie.Kind {
	case proto.ErrHostUnreachable, proto.ErrProtoUnreachable, proto.ErrPortUnreachable,
		proto.ErrAdminProhibited, proto.ErrParamProblem, proto.ErrFragNeeded:
	default:
		return
	}
	local := netip.AddrPortFrom(ie.Src.Unmap(), binary.BigEndian.Uint16(ie.Quote[0:]))
	remote := netip.AddrPortFrom(ie.Dst.Unmap(), binary.BigEndian.Uint16(ie.Quote[2:]))
	p.mu.RLock()
	s := p.conn[tupleOf(local, remote)]
	var e *Endpoint
	if len(s) > 0 {
		e = s[len(s)-1]
	}
	p.mu.RUnlock()
	if e != nil {
		e.rx.SetErr(ie.Kind.Errno())
	}
}
