package stack

import (
	"net/netip"
	"syscall"

	"ustack/buf"
	"ustack/network/ipv4"
	"ustack/network/ipv6"
	"ustack/network/neigh"
	"ustack/proto"
	"ustack/wire"
)

// interfaces is the stack seen as proto.Interfaces by its protocols.
type interfaces Stack

func (s *interfaces) Interface(index int) proto.Interface {
	if ifc := s.ifaces.Load().byIndex[index]; ifc != nil {
		return ifc
	}
	return nil
}

func (s *interfaces) LocalAddr(a netip.Addr) (int, bool) {
	i, ok := s.ifaces.Load().local[a.Unmap().WithZone("")]
	return i, ok
}

func (s *interfaces) Broadcast(ifIndex int, a netip.Addr) bool {
	t := s.ifaces.Load()
	if !a.Is4() {
		return false
	}
	if a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return true
	}
	ifc := t.byIndex[ifIndex]
	return ifc != nil && t.isBroadcast(ifc, a)
}

func (s *interfaces) Loopback() proto.Interface {
	lo := s.lo.Load()
	if lo == nil {
		return nil
	}
	return lo
}

func (s *interfaces) Each(f func(proto.Interface)) {
	for _, ifc := range (*Stack)(s).Interfaces() {
		f(ifc)
	}
}

// netMux is the stack's proto.Network: it sends through IPv4 or IPv6 by
// the destination's family (IPv4-mapped IPv6 addresses go to IPv4).
type netMux struct {
	v4  *ipv4.Protocol
	v6  *ipv6.Protocol
	ifs *interfaces
}

// Route resolves a route. A link-local IPv6 destination without a zone
// or interface takes the interface of a link-local source (RFC 4007 §6:
// the source's zone is the packet's): transports key connections by
// addresses without zones and route them again by their two addresses.
func (m *netMux) Route(dst, src netip.Addr, ifIndex int) (proto.Route, error) {
	if dst.Unmap().Is4() {
		return m.v4.Route(dst, src, ifIndex)
	}
	if dst.Is6() && m.v6 != nil {
		if ifIndex == 0 && dst.Zone() == "" && src.Zone() == "" && src.IsLinkLocalUnicast() &&
			(dst.IsLinkLocalUnicast() || dst.IsLinkLocalMulticast()) && m.ifs != nil {
			if i, ok := m.ifs.LocalAddr(src); ok {
				ifIndex = i
			}
		}
		return m.v6.Route(dst, src, ifIndex)
	}
	return proto.Route{}, syscall.EAFNOSUPPORT
}

func (m *netMux) WritePacket(r proto.Route, p wire.IPProtocol, wp proto.WriteParams, pkt *buf.Packet) error {
	if r.Dst.Unmap().Is4() {
		return m.v4.WritePacket(r, p, wp, pkt)
	}
	if r.Dst.Is6() && m.v6 != nil {
		return m.v6.WritePacket(r, p, wp, pkt)
	}
	pkt.Release()
	return syscall.EAFNOSUPPORT
}

func (m *netMux) LocalAddr(a netip.Addr) bool {
	if a.Unmap().Is4() {
		return m.v4.LocalAddr(a)
	}
	return m.v6 != nil && m.v6.LocalAddr(a)
}

func (m *netMux) JoinGroup(ifIndex int, group netip.Addr) error {
	if g := group.Unmap(); g.Is4() {
		return m.v4.JoinGroup(ifIndex, g)
	}
	if group.Is6() && m.v6 != nil {
		return m.v6.JoinGroup(ifIndex, group)
	}
	return syscall.EAFNOSUPPORT
}

func (m *netMux) LeaveGroup(ifIndex int, group netip.Addr) error {
	if g := group.Unmap(); g.Is4() {
		return m.v4.LeaveGroup(ifIndex, g)
	}
	if group.Is6() && m.v6 != nil {
		return m.v6.LeaveGroup(ifIndex, group)
	}
	return syscall.EAFNOSUPPORT
}

func (m *netMux) MaxHeaderLen() int {
	if m.v6 != nil {
		return max(m.v4.MaxHeaderLen(), m.v6.MaxHeaderLen())
	}
	return m.v4.MaxHeaderLen()
}

// resolverMux sends neighbour solicitations with the protocol of the
// target's family: ARP for IPv4, neighbour discovery for IPv6.
type resolverMux struct {
	v4 neigh.Resolver
	v6 neigh.Resolver
}

func (r resolverMux) Solicit(target netip.Addr, dst wire.MAC) {
	switch {
	case target.Is4() && r.v4 != nil:
		r.v4.Solicit(target, dst)
	case target.Is6() && r.v6 != nil:
		r.v6.Solicit(target, dst)
	}
}
