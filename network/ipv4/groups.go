package ipv4

import (
	"net/netip"
	"sync"
	"syscall"
)

// groups is the set of multicast groups joined per interface (RFC 1112
// §6.2, host side without IGMP reports). 224.0.0.1 is always joined.
type groups struct {
	mu sync.RWMutex
	m  map[groupKey]int // join count
}

type groupKey struct {
	ifIndex int
	addr    netip.Addr
}

var allHosts = netip.AddrFrom4([4]byte{224, 0, 0, 1})

func (g *groups) joined(ifIndex int, a netip.Addr) bool {
	if a == allHosts {
		return true
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.m[groupKey{ifIndex, a}] > 0 || g.m[groupKey{0, a}] > 0
}

// JoinGroup makes the stack accept datagrams sent to group on the
// interface (0: every interface). group must be an IPv4 multicast address.
func (p *Protocol) JoinGroup(ifIndex int, group netip.Addr) error {
	if !group.Is4() || !group.IsMulticast() {
		return syscall.EINVAL
	}
	g := &p.groups
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.m == nil {
		g.m = make(map[groupKey]int)
	}
	g.m[groupKey{ifIndex, group}]++
	return nil
}

// LeaveGroup undoes one JoinGroup.
func (p *Protocol) LeaveGroup(ifIndex int, group netip.Addr) error {
	g := &p.groups
	g.mu.Lock()
	defer g.mu.Unlock()
	k := groupKey{ifIndex, group}
	switch {
	case g.m[k] > 1:
		g.m[k]--
	case g.m[k] == 1:
		delete(g.m, k)
	default:
		return syscall.EADDRNOTAVAIL
	}
	return nil
}
