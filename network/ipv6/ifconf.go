package ipv6

import (
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"syscall"

	"ustack/proto"
	"ustack/wire"
)

// ifConfs holds the IPv6 settings of each interface that IPv4 does not
// share (Linux's net.ipv6.conf.IF.mtu and hop_limit): the IPv6 MTU and
// the default hop limit, both learned from router advertisements (RFC 4861
// §6.3.4) or set by hand. The data path reads them without a lock from a
// map replaced whole on every change; an interface with no entry uses its
// own MTU and net.inet6.ip6.hlim.
type ifConfs struct {
	mu sync.Mutex // serializes writers
	m  atomic.Pointer[map[int]ifConf]
}

type ifConf struct {
	mtu      int   // 0: the interface's MTU
	hopLimit uint8 // 0: net.inet6.ip6.hlim
}

func (c *ifConfs) get(ifIndex int) ifConf {
	m := c.m.Load()
	if m == nil {
		return ifConf{}
	}
	return (*m)[ifIndex]
}

// update applies f to the interface's entry and publishes the new map,
// dropping entries that became empty and those of interfaces gone.
func (c *ifConfs) update(ifs proto.Interfaces, ifIndex int, f func(*ifConf)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := make(map[int]ifConf)
	if old := c.m.Load(); old != nil {
		maps.Copy(m, *old)
	}
	e := m[ifIndex]
	f(&e)
	m[ifIndex] = e
	for i, e := range m {
		if e == (ifConf{}) || ifs.Interface(i) == nil {
			delete(m, i)
		}
	}
	if len(m) == 0 {
		c.m.Store(nil)
		return
	}
	c.m.Store(&m)
}

// SetInterfaceMTU sets the interface's IPv6 MTU, leaving IPv4's alone:
// RFC 4861 §6.3.4 applies a router advertisement's MTU option to IPv6
// only. The value must be at least the IPv6 minimum of 1280 (RFC 8200 §5)
// and at most the interface's MTU (RFC 4861 §6.3.4: larger than the link
// takes is ignored): EINVAL otherwise. 0 goes back to the interface's MTU.
// Routes over the interface use the smaller of this, the route's MTU and
// a path MTU learned from packet too big.
func (p *Protocol) SetInterfaceMTU(ifIndex, mtu int) error {
	ifc := p.ifs.Interface(ifIndex)
	if ifc == nil {
		return fmt.Errorf("ipv6: no interface %d: %w", ifIndex, syscall.ENODEV)
	}
	if mtu != 0 && (mtu < wire.IPv6MinMTU || mtu > ifc.MTU()) {
		return fmt.Errorf("ipv6: MTU %d of %s outside [%d, %d]: %w", mtu, ifc.Name(), wire.IPv6MinMTU, ifc.MTU(), syscall.EINVAL)
	}
	p.ifconf.update(p.ifs, ifIndex, func(e *ifConf) { e.mtu = mtu })
	return nil
}

// InterfaceMTU is the interface's IPv6 MTU: the one set, if the
// interface's own MTU is not lower, else the interface's (0 for an
// interface that does not exist).
func (p *Protocol) InterfaceMTU(ifIndex int) int {
	ifc := p.ifs.Interface(ifIndex)
	if ifc == nil {
		return 0
	}
	return p.ifMTU(ifc)
}

// ifMTU is ifc's IPv6 MTU (see InterfaceMTU).
func (p *Protocol) ifMTU(ifc proto.Interface) int {
	mtu := ifc.MTU()
	if m := p.ifconf.get(ifc.Index()).mtu; m > 0 && m < mtu {
		return m
	}
	return mtu
}

// SetInterfaceHopLimit sets the default hop limit of unicast packets sent
// out the interface (RFC 4861 §6.3.2 CurHopLimit, which a router
// advertisement's Cur Hop Limit sets, §6.3.4), for IPv6 only; 0 goes back
// to net.inet6.ip6.hlim. A socket's own hop limit still wins.
func (p *Protocol) SetInterfaceHopLimit(ifIndex int, hopLimit uint8) error {
	if p.ifs.Interface(ifIndex) == nil {
		return fmt.Errorf("ipv6: no interface %d: %w", ifIndex, syscall.ENODEV)
	}
	p.ifconf.update(p.ifs, ifIndex, func(e *ifConf) { e.hopLimit = hopLimit })
	return nil
}

// InterfaceHopLimit is the default hop limit of unicast packets sent out
// the interface: the one set, else net.inet6.ip6.hlim.
func (p *Protocol) InterfaceHopLimit(ifIndex int) uint8 {
	if hl := p.ifconf.get(ifIndex).hopLimit; hl != 0 {
		return hl
	}
	return uint8(p.hopLimit.Load())
}
