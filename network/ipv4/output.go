package ipv4

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"

	"ustack/buf"
	"ustack/link"
	"ustack/link/offload"
	ipfrag "ustack/network/internal/frag"
	"ustack/network/route"
	"ustack/proto"
	"ustack/wire"
)

// limitedBroadcast is 255.255.255.255.
var limitedBroadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

// MaxHeaderLen is the most header bytes IPv4 and a link prepend: IPv4 with
// options, Ethernet with two VLAN tags, a virtio-net header.
func (p *Protocol) MaxHeaderLen() int {
	return wire.IPv4MaxHeaderLen + wire.EthernetHeaderLen + 2*wire.VLANTagLen + 12
}

// Route resolves how to send to dst (RFC 1122 §3.3.1). src, when valid,
// must be an address of this stack; otherwise one is chosen: the route's
// preferred source, else the outgoing interface's address on the next hop's
// subnet, else its first address (RFC 1122 §3.3.4.3). ifIndex, when not 0,
// restricts the choice to routes through that interface (SO_BINDTODEVICE).
func (p *Protocol) Route(dst, src netip.Addr, ifIndex int) (proto.Route, error) {
	dst = dst.Unmap()
	if !dst.Is4() {
		return proto.Route{}, fmt.Errorf("ipv4: %v is not an IPv4 address: %w", dst, syscall.EAFNOSUPPORT)
	}
	src = src.Unmap()
	if src.IsValid() && !src.IsUnspecified() {
		if _, ok := p.ifs.LocalAddr(src); !ok {
			return proto.Route{}, syscall.EADDRNOTAVAIL
		}
	} else {
		src = netip.Addr{}
	}

	// Local destinations go through the loopback interface.
	if idx, ok := p.ifs.LocalAddr(dst); ok || dst.IsLoopback() {
		lo := p.ifs.Loopback()
		if lo == nil || (!ok && !hasPrefixFor(lo, dst)) {
			return proto.Route{}, proto.ErrNoRoute
		}
		if !src.IsValid() {
			src = dst
			if !ok {
				src = firstAddr(lo)
			}
		}
		_ = idx
		return proto.Route{Src: src, Dst: dst, NextHop: dst, IfIndex: lo.Index(), MTU: lo.MTU(),
			Local: true, Caps: lo.Capabilities()}, nil
	}

	r := proto.Route{Dst: dst, Src: src}
	if dst == limitedBroadcast || dst.IsMulticast() {
		// RFC 1122 §3.3.6: sent on one interface: the one asked for,
		// else the one a route picks, else the first that is up.
		ifc := p.ifs.Interface(ifIndex)
		if ifc == nil {
			if rt, ok := p.lookup(dst, 0); ok {
				ifc = p.ifs.Interface(rt.IfIndex)
			}
		}
		if ifc == nil {
			ifc = p.firstUp()
		}
		if ifc == nil {
			return proto.Route{}, proto.ErrNoRoute
		}
		r.IfIndex, r.MTU, r.Caps, r.NextHop = ifc.Index(), ifc.MTU(), ifc.Capabilities(), dst
		r.Broadcast, r.Multicast = dst == limitedBroadcast, dst.IsMulticast()
		if !r.Src.IsValid() {
			r.Src = firstAddr(ifc)
		}
		if !r.Src.IsValid() {
			r.Src = netip.IPv4Unspecified()
		}
		return r, nil
	}

	rt, ok := p.lookup(dst, ifIndex)
	if !ok {
		return proto.Route{}, proto.ErrNoRoute
	}
	ifc := p.ifs.Interface(rt.IfIndex)
	if ifc == nil || !ifc.Up() {
		return proto.Route{}, proto.ErrNoRoute
	}
	r.IfIndex, r.Caps = rt.IfIndex, ifc.Capabilities()
	r.MTU = ifc.MTU()
	if rt.MTU > 0 && rt.MTU < r.MTU {
		r.MTU = rt.MTU
	}
	r.NextHop = dst
	if rt.Gateway.IsValid() {
		r.NextHop = rt.Gateway
	}
	r.Broadcast = p.ifs.Broadcast(rt.IfIndex, dst)
	if !r.Src.IsValid() {
		r.Src = rt.Src
	}
	if !r.Src.IsValid() {
		r.Src = selectSource(ifc, r.NextHop)
	}
	if !r.Src.IsValid() {
		return proto.Route{}, syscall.EADDRNOTAVAIL
	}
	return r, nil
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
		if found == nil && ifc.Up() && !ifc.Capabilities().Has(link.CapLoopback) && len(ifc.Addrs()) > 0 {
			found = ifc
		}
	})
	return found
}

// selectSource picks the interface's IPv4 address on next's subnet, else its
// first IPv4 address.
func selectSource(ifc proto.Interface, next netip.Addr) netip.Addr {
	var first netip.Addr
	for _, a := range ifc.Addrs() {
		if !a.Addr().Is4() {
			continue
		}
		if a.Contains(next) {
			return a.Addr()
		}
		if !first.IsValid() {
			first = a.Addr()
		}
	}
	return first
}

func firstAddr(ifc proto.Interface) netip.Addr { return selectSource(ifc, netip.Addr{}) }

func hasPrefixFor(ifc proto.Interface, a netip.Addr) bool {
	for _, pf := range ifc.Addrs() {
		if pf.Contains(a) {
			return true
		}
	}
	return false
}

// LocalAddr reports whether a is one of this stack's IPv4 addresses or the
// broadcast address of one of its interfaces.
func (p *Protocol) LocalAddr(a netip.Addr) bool {
	a = a.Unmap()
	if _, ok := p.ifs.LocalAddr(a); ok || a == limitedBroadcast {
		return true
	}
	found := false
	p.ifs.Each(func(ifc proto.Interface) {
		if !found && p.ifs.Broadcast(ifc.Index(), a) {
			found = true
		}
	})
	return found
}

// WritePacket prepends an IPv4 header to pkt (whose front is the transport
// header) and sends it along r, fragmenting when it exceeds r.MTU and
// neither DF nor GSO is set (RFC 791 §3.2). It takes ownership of pkt.
func (p *Protocol) WritePacket(r proto.Route, proto_ wire.IPProtocol, wp proto.WriteParams, pkt *buf.Packet) error {
	ttl := wp.TTL
	if ttl == 0 {
		ttl = uint8(p.ttl.Load())
		if r.Multicast {
			ttl = 1 // RFC 1112 §6.1
		}
	}
	f := wire.IPv4Fields{TOS: wp.TOS, TotalLen: wire.IPv4MinHeaderLen + pkt.Len(), ID: p.newID(),
		TTL: ttl, Protocol: proto_, Src: r.Src, Dst: r.Dst}
	if wp.DF {
		f.Flags = wire.IPv4FlagDF
	}
	if f.TotalLen > r.MTU && pkt.Offload.GSO == buf.GSONone {
		if wp.DF {
			pkt.Release()
			p.counters.Drop(proto.DropFragNeeded)
			return syscall.EMSGSIZE
		}
		if f.TotalLen > wire.IPv4MaxTotalLen {
			pkt.Release()
			p.counters.Drop(proto.DropFragTooBig)
			return syscall.EMSGSIZE
		}
		return p.fragmentAndSend(r, &f, pkt)
	}
	if f.TotalLen > wire.IPv4MaxTotalLen {
		f.TotalLen = 0 // a GSO super-packet; the segmenter sets real lengths
	}
	f.Encode(pkt.Prepend(wire.IPv4MinHeaderLen))
	return p.output(r.IfIndex, r.NextHop, pkt)
}

// output hands a finished IPv4 packet to the interface. It takes ownership.
func (p *Protocol) output(ifIndex int, next netip.Addr, pkt *buf.Packet) error {
	ifc := p.ifs.Interface(ifIndex)
	if ifc == nil {
		pkt.Release()
		p.counters.Drop(proto.DropNoRoute)
		return proto.ErrNoRoute
	}
	p.counters.OutPackets.Inc()
	p.counters.OutBytes.Add(uint64(pkt.Len()))
	return ifc.Output(next, wire.EtherTypeIPv4, pkt)
}

// fragmentAndSend cuts pkt (transport header and data, no IP header) into
// fragments that fit r.MTU, each with a copy of the header f, and sends
// them (RFC 791 §3.2, "fragmentation"). It takes ownership of pkt.
func (p *Protocol) fragmentAndSend(r proto.Route, f *wire.IPv4Fields, pkt *buf.Packet) error {
	return p.fragment(f, pkt, r.MTU, func(frag *buf.Packet) error {
		p.fragsOut.Inc()
		return p.output(r.IfIndex, r.NextHop, frag)
	})
}

// fragment cuts payload into fragments of at most mtu bytes with headers
// made from f and passes each to send; ipfrag.Split makes the pieces,
// sharing payload's bytes. f.FragOff and the MF flag of f describe
// payload's place in the original datagram, so fragments can be
// fragmented again when forwarding: offsets add to f.FragOff and the last
// fragment keeps f's MF (RFC 791 §3.2). The first fragment carries
// f.Options, the later ones only the options whose "copied" flag is set
// (RFC 791 §3.1). A partial checksum is completed first; one that cannot
// be is counted as malformed. It takes ownership of payload.
func (p *Protocol) fragment(f *wire.IPv4Fields, payload *buf.Packet, mtu int, send func(*buf.Packet) error) error {
	laterOpts := copiedOptions(f.Options)
	laterHdr := wire.IPv4MinHeaderLen + len(laterOpts)
	lastMF := f.Flags&wire.IPv4FlagMF != 0
	err := ipfrag.Split(payload, mtu-f.Len(), mtu-laterHdr, func(piece *buf.Packet, off int, more bool) error {
		h := *f
		if off > 0 {
			h.Options = laterOpts
		}
		h.FragOff = f.FragOff + off
		h.Flags = f.Flags &^ wire.IPv4FlagMF
		if more || lastMF {
			h.Flags |= wire.IPv4FlagMF
		}
		h.TotalLen = h.Len() + piece.Len()
		h.Encode(piece.Prepend(h.Len()))
		return send(piece)
	})
	if errors.Is(err, offload.ErrCsumRange) {
		p.counters.Drop(proto.DropMalformed)
	}
	return err
}

// copiedOptions returns the options whose "copied" flag is set, padded to a
// multiple of four (RFC 791 §3.1: they go into every fragment).
func copiedOptions(opts []byte) []byte {
	if len(opts) == 0 {
		return nil
	}
	var out []byte
	for i := 0; i < len(opts); {
		t := opts[i]
		if t == 0 {
			break
		}
		if t == 1 {
			i++
			continue
		}
		if i+1 >= len(opts) || opts[i+1] < 2 || i+int(opts[i+1]) > len(opts) {
			break
		}
		n := int(opts[i+1])
		if t&0x80 != 0 {
			out = append(out, opts[i:i+n]...)
		}
		i += n
	}
	for len(out)%4 != 0 {
		out = append(out, 0)
	}
	return out
}
