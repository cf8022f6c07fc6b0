// Package prototest holds pieces for fakes of the proto contracts, for
// tests of the layers above them.
package prototest

import (
	"net/netip"
	"sync"
	"syscall"
)

// Groups implements the multicast half of proto.Network (JoinGroup,
// LeaveGroup) for a fake network, counting memberships. Embed it.
type Groups struct {
	mu sync.Mutex
	m  map[netip.Addr]int
}

// JoinGroup records one membership of group.
func (g *Groups) JoinGroup(_ int, group netip.Addr) error {
	if !group.IsMulticast() {
		return syscall.EINVAL
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.m == nil {
		g.m = make(map[netip.Addr]int)
	}
	g.m[group]++
	return nil
}

// LeaveGroup drops one membership of group.
func (g *Groups) LeaveGroup(_ int, group netip.Addr) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.m[group] == 0 {
		return syscall.EADDRNOTAVAIL
	}
	g.m[group]--
	return nil
}

// Members is the number of memberships of group.
func (g *Groups) Members(group netip.Addr) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.m[group]
}
