package stack

import (
	"fmt"
	"net/netip"

	"ustack/network/ndp"
	"ustack/network/route"
)

// ndHost is the stack doing neighbour discovery's part (ndp.Host): it
// assigns the addresses that passed DAD, changes routes from router
// advertisements and redirects, and joins solicited-node groups at IPv6.
//
// Locking: ndp calls these without its own lock; they take s.mu (or the
// routing table's) and never call back into ndp. The stack, in turn,
// never calls ndp's AddAddress or RemoveAddress while holding s.mu.
type ndHost struct{ s *Stack }

func (h ndHost) AddAddress(ifIndex int, p netip.Prefix, prefixRoute bool) error {
	s := h.s
	s.mu.Lock()
	defer s.mu.Unlock()
	ifc := s.ifaces.Load().byIndex[ifIndex]
	if ifc == nil {
		return fmt.Errorf("stack: interface %d: %w", ifIndex, ErrNoInterface)
	}
	// A new address starts preferred (RFC 4862 §5.5.4); ndp tells
	// otherwise right after.
	s.ipv6.SetDeprecated(ifIndex, p.Addr(), false)
	return s.assign(ifc, netip.PrefixFrom(p.Addr().WithZone(""), p.Bits()), prefixRoute && p.Bits() < 128)
}

func (h ndHost) RemoveAddress(ifIndex int, a netip.Addr) error {
	s := h.s
	s.mu.Lock()
	defer s.mu.Unlock()
	ifc := s.ifaces.Load().byIndex[ifIndex]
	if ifc == nil {
		return fmt.Errorf("stack: interface %d: %w", ifIndex, ErrNoInterface)
	}
	s.ipv6.SetDeprecated(ifIndex, a, false)
	return s.unassign(ifc, a.WithZone(""))
}

// SetDeprecated records the address's state at IPv6, whose source address
// selection then avoids it for new communication (RFC 6724 rule 3);
// existing connections keep it.
func (h ndHost) SetDeprecated(ifIndex int, a netip.Addr, deprecated bool) {
	h.s.ipv6.SetDeprecated(ifIndex, a, deprecated)
	h.s.log.Info("address preference changed", "ifindex", ifIndex, "addr", a, "deprecated", deprecated)
}

func (h ndHost) AddRoute(r route.Route) error    { return h.s.routes.Add(r) }
func (h ndHost) DeleteRoute(r route.Route) error { return h.s.routes.Delete(r) }

// SetMTU sets the interface's IPv6 MTU from a router advertisement's MTU
// option; IPv4 keeps the interface's MTU (RFC 4861 §6.3.4: the option
// gives the link MTU for IPv6). network/ipv6 refuses a value under 1280
// or over the interface's MTU.
func (h ndHost) SetMTU(ifIndex int, mtu int) error {
	old := h.s.ipv6.InterfaceMTU(ifIndex)
	if err := h.s.ipv6.SetInterfaceMTU(ifIndex, mtu); err != nil {
		return err
	}
	if mtu != old {
		h.s.log.Info("router MTU", "ifindex", ifIndex, "mtu", mtu)
	}
	return nil
}

// SetHopLimit sets the interface's default IPv6 hop limit from a router
// advertisement's Cur Hop Limit (RFC 4861 §6.3.4); IPv4's TTL and other
// interfaces keep theirs.
func (h ndHost) SetHopLimit(ifIndex int, hopLimit uint8) {
	old := h.s.ipv6.InterfaceHopLimit(ifIndex)
	if err := h.s.ipv6.SetInterfaceHopLimit(ifIndex, hopLimit); err != nil {
		h.s.log.Debug("router hop limit", "ifindex", ifIndex, "hlim", hopLimit, "err", err)
		return
	}
	if hopLimit != old {
		h.s.log.Info("router hop limit", "ifindex", ifIndex, "hlim", hopLimit)
	}
}

func (h ndHost) JoinGroup(ifIndex int, group netip.Addr) error {
	return h.s.ipv6.JoinGroup(ifIndex, group)
}

func (h ndHost) LeaveGroup(ifIndex int, group netip.Addr) error {
	return h.s.ipv6.LeaveGroup(ifIndex, group)
}

var _ ndp.Host = ndHost{}

// SetRouterAdvert makes the interface send router advertisements with cfg
// (RFC 4861 §6.2) while net.inet6.ip6.forwarding is on, and answer router
// solicitations; nil stops advertising with a final advertisement of
// router lifetime 0 (§6.2.5), as removing the interface or closing the
// stack does.
func (s *Stack) SetRouterAdvert(ifname string, cfg *ndp.AdvertConfig) error {
	ifc := s.Interface(ifname)
	if ifc == nil {
		return fmt.Errorf("stack: interface %q: %w", ifname, ErrNoInterface)
	}
	if cfg == nil {
		s.nd.StopAdvertising(ifc.index)
		return nil
	}
	return s.nd.Advertise(ifc.index, *cfg)
}

// AddrZone is the zone Go's net gives a.Unmap() when it is an IPv6
// link-local address of this stack: the name of the interface that holds
// it (a link-local address is ambiguous without its link, RFC 4007 §6).
// It is "" for any other address. Sockets put it on the addresses of TCP
// connections ("fe80::1%eth0"), as net does.
func (s *Stack) AddrZone(a netip.Addr) string {
	a = a.Unmap().WithZone("")
	if !a.IsLinkLocalUnicast() || !a.Is6() {
		return ""
	}
	t := s.ifaces.Load()
	if i, ok := t.local[a]; ok {
		if ifc := t.byIndex[i]; ifc != nil {
			return ifc.name
		}
	}
	return ""
}
