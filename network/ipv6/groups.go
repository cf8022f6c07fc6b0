package ipv6

import (
	"net/netip"
	"slices"
	"sync"
	"syscall"

	"ustack/proto"
	"ustack/wire"
)

// groups is the set of multicast groups joined per interface (RFC 4291
// §2.8: a node listens to all-nodes and to the solicited-node group of
// each of its addresses, which this package derives from the interface's
// addresses; others are joined by JoinGroup). MLD reports are the
// NDHandler's business (see GroupObserver).
type groups struct {
	mu sync.RWMutex
	m  map[groupKey]int // join count
}

type groupKey struct {
	ifIndex int
	addr    netip.Addr
}

var (
	allNodes          = wire.IPv6AllNodes()
	allNodesInterface = netip.AddrFrom16([16]byte{0: 0xff, 1: 0x01, 15: 0x01})
	solicitedPrefix   = netip.MustParsePrefix("ff02::1:ff00:0/104")
)

// joined reports whether the stack listens to group a on ifc.
func (g *groups) joined(ifc proto.Interface, a netip.Addr) bool {
	if a == allNodes || a == allNodesInterface {
		return true
	}
	if solicitedPrefix.Contains(a) {
		for _, pf := range ifc.Addrs() {
			if u := pf.Addr(); u.Is6() && !u.Is4In6() && wire.SolicitedNodeMulticast(u) == a {
				return true
			}
		}
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.m[groupKey{ifc.Index(), a}] > 0 || g.m[groupKey{0, a}] > 0
}

// JoinGroup makes the stack accept packets sent to group on the interface
// (0: every interface; a zone on group names the interface too). group
// must be an IPv6 multicast address.
func (p *Protocol) JoinGroup(ifIndex int, group netip.Addr) error {
	group, ifIndex, err := p.groupArgs(ifIndex, group)
	if err != nil {
		return err
	}
	g := &p.groups
	g.mu.Lock()
	if g.m == nil {
		g.m = make(map[groupKey]int)
	}
	k := groupKey{ifIndex, group}
	g.m[k]++
	first := g.m[k] == 1
	g.mu.Unlock()
	if first {
		p.groupChanged(ifIndex, group, true)
	}
	return nil
}

// LeaveGroup undoes one JoinGroup.
func (p *Protocol) LeaveGroup(ifIndex int, group netip.Addr) error {
	group, ifIndex, err := p.groupArgs(ifIndex, group)
	if err != nil {
		return err
	}
	g := &p.groups
	g.mu.Lock()
	k := groupKey{ifIndex, group}
	last := false
	switch {
	case g.m[k] > 1:
		g.m[k]--
	case g.m[k] == 1:
		delete(g.m, k)
		last = true
	default:
		g.mu.Unlock()
		return syscall.EADDRNOTAVAIL
	}
	g.mu.Unlock()
	if last {
		p.groupChanged(ifIndex, group, false)
	}
	return nil
}

func (p *Protocol) groupArgs(ifIndex int, group netip.Addr) (netip.Addr, int, error) {
	if !group.Is6() || group.Is4In6() || !group.IsMulticast() {
		return group, 0, syscall.EINVAL
	}
	if z := group.Zone(); z != "" {
		idx, ok := p.zoneIndex(z)
		if !ok {
			return group, 0, syscall.ENODEV
		}
		if ifIndex != 0 && ifIndex != idx {
			return group, 0, syscall.EINVAL
		}
		ifIndex = idx
	}
	return group.WithZone(""), ifIndex, nil
}

func (p *Protocol) groupChanged(ifIndex int, group netip.Addr, joined bool) {
	if o, ok := p.ndHandler().(GroupObserver); ok {
		o.GroupChanged(ifIndex, group, joined)
	}
}

// Groups returns the groups the stack listens to on the interface, for
// MLD reports (RFC 3810 §6): those joined on it or on every interface,
// and the solicited-node groups of its addresses; not all-nodes, which is
// never reported. The result is sorted and the caller's.
func (p *Protocol) Groups(ifIndex int) []netip.Addr {
	var out []netip.Addr
	if ifc := p.ifs.Interface(ifIndex); ifc != nil {
		for _, pf := range ifc.Addrs() {
			if u := pf.Addr(); u.Is6() && !u.Is4In6() && !u.IsLoopback() {
				out = append(out, wire.SolicitedNodeMulticast(u))
			}
		}
	}
	g := &p.groups
	g.mu.RLock()
	for k := range g.m {
		if (k.ifIndex == ifIndex || k.ifIndex == 0) && k.addr != allNodes {
			out = append(out, k.addr)
		}
	}
	g.mu.RUnlock()
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}
