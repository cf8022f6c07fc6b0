package stack

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"

	"ustack/buf"
	"ustack/internal/stats"
	"ustack/link"
	"ustack/network/neigh"
	"ustack/network/route"
	"ustack/proto"
	"ustack/wire"
)

// Interface is a network interface of a stack: a link, its addresses and
// its neighbour cache. It frames and demultiplexes for the protocols: the
// receive path starts in DeliverBatch on the link's reader goroutine and
// runs inline up to the socket queues.
type Interface struct {
	s     *Stack
	index int
	name  string
	ep    link.Endpoint
	typ   link.Type // ep's, fixed
	// loopback: ep has link.CapLoopback (fixed).
	loopback bool
	mac      wire.MAC
	mtu      atomic.Int64
	up       atomic.Bool
	addrs    atomic.Pointer[[]netip.Prefix]
	neigh    *neigh.Cache // nil on IP links

	counters proto.Counters // "if.NAME.eth.": framing and demux
	writes   sync.Pool      // *[1]*buf.Packet, to write one packet without allocating
}

// AddInterface adds a link to the stack under name and brings it up. The
// stack owns ep from now on and closes it when the interface is removed.
func (s *Stack) AddInterface(name string, ep link.Endpoint) (*Interface, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if name == "" {
		return nil, fmt.Errorf("stack: interface name is empty")
	}
	if s.ifaces.Load().byName[name] != nil {
		return nil, fmt.Errorf("stack: interface %q: %w", name, ErrExists)
	}
	s.nextIndex++
	ifc := &Interface{s: s, index: s.nextIndex, name: name, ep: ep, typ: ep.Type(),
		loopback: ep.Capabilities().Has(link.CapLoopback), mac: ep.HardwareAddr()}
	ifc.mtu.Store(int64(ep.MTU()))
	ifc.addrs.Store(&[]netip.Prefix{})
	ifc.writes.New = func() any { return new([1]*buf.Packet) }
	if ep.Type() == link.TypeEthernet {
		cfg := s.ncfg
		if cfg.Rand != nil {
			// A cache uses its generator under its own lock: each gets
			// one of its own, seeded from the caller's (under s.mu).
			cfg.Rand = rand.New(rand.NewPCG(cfg.Rand.Uint64(), uint64(ifc.index)))
		}
		ifc.neigh = neigh.New(s.clk, cfg, resolverMux{v4: s.arp.Resolver(ifc), v6: s.nd.Resolver(ifc)}, ifc)
		s.arp.Attach(ifc, ifc.neigh)
	}
	s.update(func(t *ifaceTable) {
		t.byIndex[ifc.index] = ifc
		t.byName[name] = ifc
	})
	ifc.up.Store(true)
	if ifc.neigh != nil {
		// Neighbour discovery makes the link-local address (after DAD)
		// and solicits routers; Attach calls nothing of the host, so
		// s.mu may be held.
		s.nd.Attach(ifc, ifc.neigh, ndHost{s})
	}
	ep.Attach(ifc)
	s.log.Info("interface added", "if", name, "index", ifc.index, "link", ep.Name(),
		"mtu", ep.MTU(), "mac", ifc.mac, "caps", ep.Capabilities())
	return ifc, nil
}

// RemoveInterface detaches and closes the interface's link and removes its
// addresses, routes and neighbours.
func (s *Stack) RemoveInterface(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ifc := s.ifaces.Load().byName[name]
	if ifc == nil {
		return fmt.Errorf("stack: interface %q: %w", name, ErrNoInterface)
	}
	ifc.up.Store(false)
	ifc.ep.Attach(nil)
	s.update(func(t *ifaceTable) {
		delete(t.byIndex, ifc.index)
		delete(t.byName, name)
		for a, i := range t.local {
			if i == ifc.index {
				delete(t.local, a)
			}
		}
	})
	s.routes.DeleteFunc(func(r route.Route) bool { return r.IfIndex == ifc.index })
	if ifc.neigh != nil {
		s.arp.Detach(ifc.index)
		s.nd.Detach(ifc.index)
		ifc.neigh.Close()
	}
	s.lo.CompareAndSwap(ifc, nil)
	s.log.Info("interface removed", "if", name)
	return ifc.ep.Close()
}

// AddAddress assigns an address (with its prefix length) to the interface,
// adds the connected route for its prefix and, on Ethernet, announces an
// IPv4 address with a gratuitous ARP (RFC 5227 §3). An IPv6 address on an
// Ethernet interface goes through duplicate address detection first
// (RFC 4862 §5.4): it is assigned a moment later, or never if a
// neighbour has it (see NDP().Addresses).
func (s *Stack) AddAddress(ifname string, p netip.Prefix) error {
	if !p.IsValid() {
		return fmt.Errorf("stack: invalid address %v", p)
	}
	p = netip.PrefixFrom(p.Addr().Unmap().WithZone(""), p.Bits())
	s.mu.Lock()
	ifc := s.ifaces.Load().byName[ifname]
	if ifc == nil {
		s.mu.Unlock()
		return fmt.Errorf("stack: interface %q: %w", ifname, ErrNoInterface)
	}
	if p.Addr().Is6() && ifc.neigh != nil {
		if i, ok := s.ifaces.Load().local[p.Addr()]; ok {
			s.mu.Unlock()
			return fmt.Errorf("stack: address %v is on interface %d: %w", p.Addr(), i, ErrExists)
		}
		// ndp calls back into ndHost, which takes s.mu.
		s.mu.Unlock()
		if err := s.nd.AddAddress(ifc.index, p); err != nil {
			return fmt.Errorf("stack: %w", err)
		}
		return nil
	}
	err := s.assign(ifc, p, p.Bits() < p.Addr().BitLen() || ifc == s.lo.Load())
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if ifc.neigh != nil && p.Addr().Is4() {
		s.arp.Announce(ifc, p.Addr())
	}
	return nil
}

// assign adds p to ifc's addresses and, with route, the connected route
// for its prefix. Callers hold s.mu.
func (s *Stack) assign(ifc *Interface, p netip.Prefix, route_ bool) error {
	if i, ok := s.ifaces.Load().local[p.Addr()]; ok {
		return fmt.Errorf("stack: address %v is on interface %d: %w", p.Addr(), i, ErrExists)
	}
	// The route first: whoever sees the address can route with it.
	if route_ {
		s.routes.Add(route.Route{Dst: p.Masked(), IfIndex: ifc.index, Src: p.Addr(), Origin: route.OriginConnected})
	}
	s.update(func(t *ifaceTable) { t.local[p.Addr()] = ifc.index })
	addrs := append(slices.Clone(*ifc.addrs.Load()), p)
	ifc.addrs.Store(&addrs)
	s.log.Info("address added", "if", ifc.name, "addr", p)
	return nil
}

// RemoveAddress removes an address and its connected route. An IPv6
// address still under duplicate address detection is forgotten too.
func (s *Stack) RemoveAddress(ifname string, a netip.Addr) error {
	a = a.WithZone("")
	ifc := s.Interface(ifname)
	if ifc == nil {
		return fmt.Errorf("stack: interface %q: %w", ifname, ErrNoInterface)
	}
	ndHad := false
	if a.Is6() && ifc.neigh != nil {
		// Without s.mu: ndp may call ndHost.LeaveGroup.
		ndHad = s.nd.RemoveAddress(ifc.index, a)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.unassign(ifc, a); err != nil && !ndHad {
		return err
	}
	return nil
}

// unassign removes a from ifc's addresses with its connected route.
// Callers hold s.mu.
func (s *Stack) unassign(ifc *Interface, a netip.Addr) error {
	old := *ifc.addrs.Load()
	i := slices.IndexFunc(old, func(p netip.Prefix) bool { return p.Addr() == a })
	if i < 0 {
		return fmt.Errorf("stack: interface %q has no address %v", ifc.name, a)
	}
	p := old[i]
	addrs := slices.Delete(slices.Clone(old), i, i+1)
	ifc.addrs.Store(&addrs)
	s.update(func(t *ifaceTable) { delete(t.local, a) })
	s.routes.DeleteFunc(func(r route.Route) bool {
		return r.Origin == route.OriginConnected && r.IfIndex == ifc.index && r.Dst == p.Masked() && r.Src == a
	})
	if a.Is6() {
		s.ipv6.SetDeprecated(ifc.index, a, false) // a re-added address starts preferred
	}
	s.log.Info("address removed", "if", ifc.name, "addr", a)
	return nil
}

// AddRoute adds a route. r.IfIndex may be 0 when r.Gateway is on the
// subnet of an interface's address (an IPv6 one may still be under DAD)
// or, for an IPv6 link-local gateway, names its interface as its zone:
// that interface is used.
func (s *Stack) AddRoute(r route.Route) error {
	if z := r.Gateway.Zone(); z != "" {
		ifc := s.Interface(z)
		if ifc == nil {
			return fmt.Errorf("stack: gateway %v: interface %q: %w", r.Gateway, z, ErrNoInterface)
		}
		if r.IfIndex == 0 {
			r.IfIndex = ifc.index
		}
		r.Gateway = r.Gateway.WithZone("")
	}
	if r.IfIndex == 0 && r.Gateway.IsValid() {
		if c, ok := s.routes.LookupFunc(r.Gateway, func(c *route.Route) bool { return c.Origin == route.OriginConnected }); ok {
			r.IfIndex = c.IfIndex
		} else if i := s.tentativeSubnet(r.Gateway); i > 0 {
			r.IfIndex = i
		} else {
			return fmt.Errorf("stack: gateway %v is not on a connected network", r.Gateway)
		}
	}
	return s.routes.Add(r)
}

// tentativeSubnet returns the index of the interface with an IPv6 address
// under DAD whose prefix holds a, or 0: a configuration may name a
// gateway before its connected route exists.
func (s *Stack) tentativeSubnet(a netip.Addr) int {
	if !a.Is6() {
		return 0
	}
	for _, ifc := range s.Interfaces() {
		if ifc.neigh == nil {
			continue
		}
		for _, ai := range s.nd.Addresses(ifc.index) {
			if ai.Tentative && ai.Prefix.Bits() < 128 && ai.Prefix.Masked().Contains(a) {
				return ifc.index
			}
		}
	}
	return 0
}

// Index, Name, MTU, ... implement proto.Interface.

func (ifc *Interface) Index() int                      { return ifc.index }
func (ifc *Interface) Name() string                    { return ifc.name }
func (ifc *Interface) MTU() int                        { return int(ifc.mtu.Load()) }
func (ifc *Interface) LinkType() link.Type             { return ifc.ep.Type() }
func (ifc *Interface) HardwareAddr() wire.MAC          { return ifc.mac }
func (ifc *Interface) Capabilities() link.Capabilities { return ifc.ep.Capabilities() }
func (ifc *Interface) Up() bool                        { return ifc.up.Load() }
func (ifc *Interface) Addrs() []netip.Prefix           { return *ifc.addrs.Load() }

// Link is the interface's link endpoint.
func (ifc *Interface) Link() link.Endpoint { return ifc.ep }

// SetUp brings the interface administratively up or down. A down interface
// drops what it receives and refuses to send.
func (ifc *Interface) SetUp(up bool) { ifc.up.Store(up) }

// SetMTU lowers (or restores) the network-layer MTU; it cannot exceed the
// link's.
func (ifc *Interface) SetMTU(mtu int) error {
	if mtu < 68 || mtu > ifc.ep.MTU() { // RFC 791: every host takes 68
		return fmt.Errorf("stack: MTU %d outside [68, %d]", mtu, ifc.ep.MTU())
	}
	ifc.mtu.Store(int64(mtu))
	return nil
}

// Neighbors lists the neighbour cache (nil on IP links).
func (ifc *Interface) Neighbors() []neigh.Entry {
	if ifc.neigh == nil {
		return nil
	}
	return ifc.neigh.Entries()
}

// NeighborCache is the interface's neighbour cache (nil on IP links).
func (ifc *Interface) NeighborCache() *neigh.Cache { return ifc.neigh }

// DeliverBatch receives frames from the link (link.Dispatcher). It takes
// ownership of every packet and carries each up the stack inline. A
// multi-queue link calls it from several goroutines at once: nothing
// here is shared between calls but atomic counters, added to once per
// batch rather than per frame so that the queues' cores meet on them
// less.
func (ifc *Interface) DeliverBatch(_ link.Endpoint, pkts []*buf.Packet) {
	c := &ifc.counters
	n := 0
	for _, pkt := range pkts {
		n += pkt.Len()
	}
	c.InPackets.Add(uint64(len(pkts)))
	c.InBytes.Add(uint64(n))
	// The batch goes up with its frames: transports leave per-batch work
	// (TCP's ACK decision) to its end, which is here.
	batch := proto.GetBatch()
	delivered := 0
	for i, pkt := range pkts {
		batch.SetLeft(len(pkts) - 1 - i)
		if ifc.receive(pkt, batch) {
			delivered++
		}
	}
	batch.Flush()
	proto.PutBatch(batch)
	c.Delivered.Add(uint64(delivered))
}

// receive carries one frame of batch up to its network protocol, or drops
// it (counted); it reports whether the frame was handed up. It takes
// ownership of pkt.
func (ifc *Interface) receive(pkt *buf.Packet, batch *proto.Batch) bool {
	if !ifc.up.Load() {
		ifc.drop(pkt, proto.DropInterfaceDown)
		return false
	}
	pkt.IfIndex = ifc.index
	var et wire.EtherType
	if ifc.typ == link.TypeIP {
		b := pkt.Pullup(1)
		if b == nil {
			ifc.drop(pkt, proto.DropTruncated)
			return false
		}
		switch b[0] >> 4 {
		case 4:
			et = wire.EtherTypeIPv4
		case 6:
			et = wire.EtherTypeIPv6
		default:
			ifc.drop(pkt, proto.DropBadVersion)
			return false
		}
		if ifc.loopback {
			pkt.Flags |= buf.FlagLoopback
		}
	} else {
		b := pkt.Pullup(min(pkt.Len(), wire.EthernetHeaderLen))
		e, err := wire.ParseEthernet(b)
		if err != nil {
			ifc.drop(pkt, proto.DropTruncated)
			return false
		}
		dst := e.Dst()
		switch {
		case dst.IsBroadcast():
			pkt.Flags |= buf.FlagLinkBroadcast
		case dst.IsMulticast():
			pkt.Flags |= buf.FlagLinkMulticast
		case dst != ifc.mac:
			ifc.drop(pkt, proto.DropNotForUs)
			return false
		}
		if e.Src() == ifc.mac {
			ifc.drop(pkt, proto.DropBadSource) // our own frame reflected back
			return false
		}
		et = e.Type()
		pkt.LinkHeader = e[:wire.EthernetHeaderLen]
		pkt.TrimFront(wire.EthernetHeaderLen)
	}
	// The stack's three network protocols, called directly: no table
	// lookup per frame, and IP gets the batch for its transports.
	switch et {
	case wire.EtherTypeIPv4:
		ifc.s.ipv4.HandlePacketBatch(ifc, pkt, batch)
	case wire.EtherTypeIPv6:
		ifc.s.ipv6.HandlePacketBatch(ifc, pkt, batch)
	case wire.EtherTypeARP:
		ifc.s.arp.HandlePacket(ifc, pkt)
	default:
		// VLAN-tagged frames land here too: this stack has no VLAN
		// interfaces yet.
		ifc.drop(pkt, proto.DropUnknownProtocol)
		return false
	}
	return true
}

func (ifc *Interface) drop(pkt *buf.Packet, r proto.DropReason) {
	ifc.counters.Drop(r)
	pkt.Release()
}

// Output sends a network packet to the on-link next hop (proto.Interface).
// It takes ownership of pkt.
func (ifc *Interface) Output(next netip.Addr, et wire.EtherType, pkt *buf.Packet) error {
	if !ifc.up.Load() {
		ifc.drop(pkt, proto.DropInterfaceDown)
		return errDown
	}
	if ifc.neigh == nil {
		return ifc.write(pkt)
	}
	switch {
	case next.Is4() && (next == netip.AddrFrom4([4]byte{255, 255, 255, 255}) || ifc.s.ifaces.Load().isBroadcast(ifc, next)):
		return ifc.OutputLink(wire.BroadcastMAC, et, pkt)
	case next.Is4() && next.IsMulticast():
		return ifc.OutputLink(wire.MulticastMACv4(next.As4()), et, pkt)
	case next.Is6() && next.IsMulticast():
		return ifc.OutputLink(wire.MulticastMACv6(next.As16()), et, pkt)
	}
	ifc.neigh.Output(next, et, pkt)
	return nil
}

// OutputLink frames pkt for dst and writes it (proto.Interface). It takes
// ownership of pkt.
func (ifc *Interface) OutputLink(dst wire.MAC, et wire.EtherType, pkt *buf.Packet) error {
	if ifc.ep.Type() == link.TypeEthernet {
		f := wire.EthernetFields{Dst: dst, Src: ifc.mac, Type: et}
		f.Encode(pkt.Prepend(wire.EthernetHeaderLen))
	}
	return ifc.write(pkt)
}

// SendResolved is the neighbour cache's way out (neigh.Sender). It takes
// ownership of pkt.
func (ifc *Interface) SendResolved(mac wire.MAC, et wire.EtherType, pkt *buf.Packet) {
	ifc.OutputLink(mac, et, pkt)
}

// ResolutionFailed receives packets whose next hop did not answer
// (neigh.Sender); the network protocol answers with ICMP host unreachable.
// It takes ownership of pkt.
func (ifc *Interface) ResolutionFailed(_ netip.Addr, et wire.EtherType, pkt *buf.Packet) {
	switch et {
	case wire.EtherTypeIPv4:
		ifc.s.ipv4.ResolutionFailed(ifc, pkt)
		return
	case wire.EtherTypeIPv6:
		ifc.s.ipv6.ResolutionFailed(ifc, pkt)
		return
	}
	ifc.drop(pkt, proto.DropNeighFailed)
}

func (ifc *Interface) write(pkt *buf.Packet) error {
	ifc.counters.OutPackets.Inc()
	ifc.counters.OutBytes.Add(uint64(pkt.Len()))
	b := ifc.writes.Get().(*[1]*buf.Packet)
	b[0] = pkt
	_, err := ifc.ep.WriteBatch(b[:])
	b[0] = nil
	ifc.writes.Put(b)
	if err != nil {
		ifc.counters.Drop(proto.DropLinkError)
	}
	return err
}

func (ifc *Interface) visitStats(v stats.Visitor) {
	prefix := "if." + ifc.name + "."
	ifc.counters.Visit(prefix, v)
	// Drivers count in link.Stats; decorators (fault, capture) add
	// counters of their own.
	if c, ok := ifc.ep.(link.Counted); ok {
		c.LinkStats().Visit(prefix+"link.", v)
	}
	if s, ok := ifc.ep.(proto.StatsSource); ok {
		s.VisitStats(func(name string, value uint64) { v(prefix+name, value) })
	}
	if ifc.neigh != nil {
		ifc.neigh.VisitStats(func(name string, value uint64) { v(prefix+"neigh."+name, value) })
	}
}

var errDown = fmt.Errorf("stack: interface is down")

func (t *ifaceTable) isBroadcast(ifc *Interface, a netip.Addr) bool {
	for _, p := range ifc.Addrs() {
		if p.Addr().Is4() && p.Bits() < 31 && a == lastAddr(p) {
			return true
		}
	}
	return false
}

// lastAddr is the directed broadcast address of an IPv4 prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
