package ipv4

import (
	"net/netip"
	"sync"
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
// interface (0: every interface).
func (p *Protocol) JoinGroup(ifIndex int, group netip.Addr) {
	g := &p.groups
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.m == nil {
		g.m = make(map[groupKey]int)
	}
	g.m[groupKey{ifIndex, group}]++
}

// LeaveGroup undoes one JoinGroup.
func (p *Protocol) LeaveGroup(ifIndex int, group netip.Addr) {
	g := &p.groups
	g.mu.Lock()
	defer g.mu.Unlock()
	k := groupKey{ifIndex, group}
	if g.m[k] > 1 {
		g.m[k]--
	} else {
		delete(g.m, k)
	}
}
