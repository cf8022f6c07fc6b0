package ipv6

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"syscall"

	"ustack/buf"
	"ustack/link"
	"ustack/link/offload"
	ipfrag "ustack/network/internal/frag"
	"ustack/network/route"
	"ustack/proto"
	"ustack/wire"
)

// MaxHeaderLen is the most header bytes IPv6 and a link prepend: the IPv6
// header and a fragment header, Ethernet with two VLAN tags, a virtio-net
// header.
func (p *Protocol) MaxHeaderLen() int {
	return wire.IPv6HeaderLen + wire.IPv6FragmentLen + wire.EthernetHeaderLen + 2*wire.VLANTagLen + 12
}

// Route resolves how to send to dst. Link-scoped destinations (link-local
// unicast, interface- and link-local multicast) need an interface: ifIndex,
// or dst's zone (an interface index or name, as in "fe80::1%eth0"); zones
// on other addresses are ignored. The Route's addresses carry no zone: its
// IfIndex says where it leads.
//
// src, when valid and not unspecified, must be an address of this stack
// (a link-local one, of the outgoing interface); otherwise one is chosen
// by the SourceSelector (DefaultSource unless replaced). A multicast
// destination with no address to choose gets the unspecified source.
// ifIndex, when not 0, restricts the choice to routes through that
// interface (SO_BINDTODEVICE). The MTU is the smallest of the interface's
// IPv6 MTU (InterfaceMTU), the route's and the path MTU learned from
// packet too big (RFC 8201).
func (p *Protocol) Route(dst, src netip.Addr, ifIndex int) (proto.Route, error) {
	if !dst.Is6() || dst.Is4In6() {
		return proto.Route{}, fmt.Errorf("ipv6: %v is not an IPv6 address: %w", dst, syscall.EAFNOSUPPORT)
	}
	var err error
	if dst, ifIndex, err = p.applyZone(dst, ifIndex); err != nil {
		return proto.Route{}, err
	}
	if src, ifIndex, err = p.applyZone(src, ifIndex); err != nil {
		return proto.Route{}, err
	}
	if src.IsValid() && (!src.Is6() || src.Is4In6()) {
		return proto.Route{}, syscall.EINVAL
	}
	if src.IsUnspecified() {
		src = netip.Addr{}
	}
	if src.IsValid() {
		if _, ok := p.ifs.LocalAddr(src); !ok {
			return proto.Route{}, syscall.EADDRNOTAVAIL
		}
	}
	if dst.IsUnspecified() {
		return proto.Route{}, proto.ErrNoRoute
	}

	// Local destinations go through the loopback interface.
	if _, ok := p.ifs.LocalAddr(dst); ok || dst.IsLoopback() {
		lo := p.ifs.Loopback()
		if lo == nil || (!ok && !hasAddr(lo, dst)) {
			return proto.Route{}, proto.ErrNoRoute
		}
		if !src.IsValid() {
			src = dst
		}
		return proto.Route{Src: src, Dst: dst, NextHop: dst, IfIndex: lo.Index(), MTU: p.ifMTU(lo),
			Local: true, Caps: lo.Capabilities()}, nil
	}

	var r proto.Route
	var ifc proto.Interface
	switch {
	case dst.IsMulticast():
		// Sent on one interface: the one asked for, else the one a route
		// picks, else the first that is up.
		ifc = p.ifs.Interface(ifIndex)
		if ifc == nil && ifIndex == 0 {
			if rt, ok := p.lookup(dst, 0); ok {
				ifc = p.ifs.Interface(rt.IfIndex)
			}
			if ifc == nil {
				ifc = p.firstUp()
			}
		}
		if ifc == nil {
			return proto.Route{}, proto.ErrNoRoute
		}
		r = proto.Route{Dst: dst, NextHop: dst, IfIndex: ifc.Index(), MTU: p.ifMTU(ifc),
			Multicast: true, Caps: ifc.Capabilities()}
	case linkScoped(dst):
		// RFC 4007 §6: a link-local destination means nothing without
		// its link.
		if ifIndex == 0 {
			return proto.Route{}, fmt.Errorf("ipv6: link-local destination %v needs an interface: %w", dst, syscall.EINVAL)
		}
		ifc = p.ifs.Interface(ifIndex)
		if ifc == nil || !ifc.Up() {
			return proto.Route{}, proto.ErrNoRoute
		}
		r = proto.Route{Dst: dst, NextHop: dst, IfIndex: ifIndex, MTU: p.pathMTU(dst, p.ifMTU(ifc)),
			Caps: ifc.Capabilities()}
	default:
		var ok bool
		if r, ok = p.resolve(dst, ifIndex); !ok {
			return proto.Route{}, proto.ErrNoRoute
		}
		ifc = p.ifs.Interface(r.IfIndex)
	}

	if src.IsValid() {
		if linkScoped(src) && !hasAddr(ifc, src) {
			return proto.Route{}, syscall.EADDRNOTAVAIL
		}
		r.Src = src
		return r, nil
	}
	if !r.Src.IsValid() { // else the route's preferred source
		r.Src = p.selectSource(ifc, dst)
	}
	if !r.Src.IsValid() {
		if !r.Multicast {
			return proto.Route{}, syscall.EADDRNOTAVAIL
		}
		r.Src = netip.IPv6Unspecified()
	}
	return r, nil
}

// resolve finds the route to a unicast destination beyond the link-local
// scope, without choosing a source (forwarding needs none): interface,
// next hop, MTU and the route's preferred source, if any, in Src.
func (p *Protocol) resolve(dst netip.Addr, ifIndex int) (proto.Route, bool) {
	rt, ok := p.lookup(dst, ifIndex)
	if !ok {
		return proto.Route{}, false
	}
	ifc := p.ifs.Interface(rt.IfIndex)
	if ifc == nil || !ifc.Up() {
		return proto.Route{}, false
	}
	mtu := p.ifMTU(ifc)
	if rt.MTU > 0 && rt.MTU < mtu {
		mtu = rt.MTU
	}
	r := proto.Route{Dst: dst, NextHop: dst, IfIndex: rt.IfIndex, MTU: p.pathMTU(dst, mtu),
		Caps: ifc.Capabilities(), Src: rt.Src}
	if rt.Gateway.IsValid() {
		r.NextHop = rt.Gateway
	}
	return r, true
}

// pathMTU lowers mtu to the path MTU learned for dst, if one holds.
func (p *Protocol) pathMTU(dst netip.Addr, mtu int) int {
	if m, ok := p.pmtu.lookup(dst, p.clk.Now()); ok && m < mtu {
		return m
	}
	return mtu
}

func (p *Protocol) lookup(dst netip.Addr, ifIndex int) (route.Route, bool) {
	if ifIndex == 0 {
		return p.routes.Lookup(dst)
	}
	return p.routes.LookupFunc(dst, func(r *route.Route) bool { return r.IfIndex == ifIndex })
}

func (p *Protocol) firstUp() proto.Interface {
	var found proto.Interface
	p.ifs.Each(func(ifc proto.Interface) {
		if found == nil && ifc.Up() && !ifc.Capabilities().Has(link.CapLoopback) {
			found = ifc
		}
	})
	return found
}

// applyZone takes the interface from a link-scoped address's zone (an
// index or a name) and returns the address without it. A zone naming
// another interface than ifIndex (when not 0) is EINVAL; one naming no
// interface, ENODEV. Zones on other addresses are dropped.
func (p *Protocol) applyZone(a netip.Addr, ifIndex int) (netip.Addr, int, error) {
	z := a.Zone()
	if z == "" {
		return a, ifIndex, nil
	}
	a = a.WithZone("")
	if !linkScoped(a) {
		return a, ifIndex, nil
	}
	idx, ok := p.zoneIndex(z)
	if !ok {
		return a, 0, fmt.Errorf("ipv6: no interface %q: %w", z, syscall.ENODEV)
	}
	if ifIndex != 0 && ifIndex != idx {
		return a, 0, fmt.Errorf("ipv6: zone %q is not interface %d: %w", z, ifIndex, syscall.EINVAL)
	}
	return a, idx, nil
}

// zoneIndex resolves a zone: an interface index or name.
func (p *Protocol) zoneIndex(z string) (int, bool) {
	if n, err := strconv.Atoi(z); err == nil {
		return n, p.ifs.Interface(n) != nil
	}
	idx := 0
	p.ifs.Each(func(ifc proto.Interface) {
		if idx == 0 && ifc.Name() == z {
			idx = ifc.Index()
		}
	})
	return idx, idx != 0
}

// LocalAddr reports whether a is one of this stack's IPv6 addresses.
func (p *Protocol) LocalAddr(a netip.Addr) bool {
	a = a.WithZone("")
	if !a.Is6() || a.Is4In6() {
		return false
	}
	_, ok := p.ifs.LocalAddr(a)
	return ok
}

// WritePacket prepends an IPv6 header to pkt (whose front is the
// transport header) and sends it along r. The hop limit is wp.TTL, else
// 1 for multicast (RFC 3493 §5.2), else the interface's (see
// InterfaceHopLimit: net.inet6.ip6.hlim unless set); the traffic
// class is wp.TOS. A packet over r.MTU is fragmented (RFC 8200 §4.5,
// §5: only the source fragments) unless wp.DF is set (IPV6_DONTFRAG:
// EMSGSIZE instead) or it is a GSO packet. It takes ownership of pkt.
func (p *Protocol) WritePacket(r proto.Route, proto_ wire.IPProtocol, wp proto.WriteParams, pkt *buf.Packet) error {
	hl := wp.TTL
	if hl == 0 {
		hl = 1
		if !r.Multicast {
			hl = p.InterfaceHopLimit(r.IfIndex)
		}
	}
	f := wire.IPv6Fields{TrafficClass: wp.TOS, PayloadLen: pkt.Len(), NextHeader: proto_, HopLimit: hl,
		Src: r.Src.WithZone(""), Dst: r.Dst.WithZone("")}
	gso := pkt.Offload.GSO != buf.GSONone
	if wire.IPv6HeaderLen+pkt.Len() > r.MTU && !gso {
		if wp.DF {
			pkt.Release()
			p.counters.Drop(proto.DropFragNeeded)
			return syscall.EMSGSIZE
		}
		if pkt.Len() > wire.IPv6MaxPayloadLen {
			pkt.Release()
			p.counters.Drop(proto.DropFragTooBig)
			return syscall.EMSGSIZE
		}
		return p.fragmentAndSend(r, &f, pkt)
	}
	if pkt.Len() > wire.IPv6MaxPayloadLen {
		if !gso {
			pkt.Release()
			p.counters.Drop(proto.DropFragTooBig)
			return syscall.EMSGSIZE
		}
		f.PayloadLen = 0 // a GSO super-packet; the segmenter sets real lengths
	}
	f.Encode(pkt.Prepend(wire.IPv6HeaderLen))
	return p.output(r.IfIndex, r.NextHop, pkt)
}

// output hands a finished IPv6 packet to the interface (which maps a
// multicast next hop to its link address, RFC 2464 §7). It takes
// ownership.
func (p *Protocol) output(ifIndex int, next netip.Addr, pkt *buf.Packet) error {
	ifc := p.ifs.Interface(ifIndex)
	if ifc == nil {
		pkt.Release()
		p.counters.Drop(proto.DropNoRoute)
		return proto.ErrNoRoute
	}
	p.counters.OutPackets.Inc()
	p.counters.OutBytes.Add(uint64(pkt.Len()))
	return ifc.Output(next, wire.EtherTypeIPv6, pkt)
}

// fragmentAndSend cuts pkt (transport header and data) into fragments that
// fit r.MTU and sends them. It takes ownership of pkt.
func (p *Protocol) fragmentAndSend(r proto.Route, f *wire.IPv6Fields, pkt *buf.Packet) error {
	return p.fragment(f, fragID(), pkt, r.MTU, func(frag *buf.Packet) error {
		p.fragsOut.Inc()
		return p.output(r.IfIndex, r.NextHop, frag)
	})
}

// fragment cuts payload, the fragmentable part, into fragments of at most
// mtu bytes (RFC 8200 §4.5): each is the header f, a fragment header with
// identification id, and a multiple of 8 bytes of data but the last;
// ipfrag.Split makes the pieces, sharing payload's bytes. It passes each
// fragment to send. A partial checksum is completed first; one that
// cannot be is counted as malformed. It takes ownership of payload.
func (p *Protocol) fragment(f *wire.IPv6Fields, id uint32, payload *buf.Packet, mtu int, send func(*buf.Packet) error) error {
	const hdrLen = wire.IPv6HeaderLen + wire.IPv6FragmentLen
	err := ipfrag.Split(payload, mtu-hdrLen, mtu-hdrLen, func(piece *buf.Packet, off int, more bool) error {
		fh := wire.IPv6FragmentFields{NextHeader: f.NextHeader, Offset: off, More: more, ID: id}
		h := *f
		h.NextHeader, h.PayloadLen = wire.IPProtoFragment, wire.IPv6FragmentLen+piece.Len()
		b := piece.Prepend(hdrLen)
		h.Encode(b)
		fh.Encode(b[wire.IPv6HeaderLen:])
		return send(piece)
	})
	if errors.Is(err, offload.ErrCsumRange) {
		p.counters.Drop(proto.DropMalformed)
	}
	return err
}

// fragID is a fragment identification nobody can predict (RFC 7739 §5.1:
// random per packet; RFC 8200 §4.5).
func fragID() uint32 {
	var b [4]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:])
}
