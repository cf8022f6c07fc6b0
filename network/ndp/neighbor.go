package ndp

import (
	"net/netip"

	"ustack/network/neigh"
	"ustack/proto"
	"ustack/wire"
)

// Neighbour solicitation and advertisement (RFC 4861 §7).

// neighborSolicit handles a received NS (RFC 4861 §7.1.1 validation,
// §7.2.3 processing; RFC 4862 §5.4.3 for tentative targets).
func (p *Protocol) neighborSolicit(ifc proto.Interface, info proto.PacketInfo, m wire.ICMPv6) proto.DropReason {
	ns, err := wire.ParseNDPNeighborSolicit(m.Body())
	if err != nil {
		return parseDrop(err)
	}
	if info.TTL != 255 || m.Code() != 0 {
		return proto.DropMalformed
	}
	target := ns.Target()
	if target.IsMulticast() {
		return proto.DropMalformed
	}
	slla, hasSLLA := linkAddrOption(ns.Options(), wire.NDPOptSourceLLA)
	dad := info.Src.IsUnspecified()
	if dad && (info.Dst != wire.SolicitedNodeMulticast(target) || hasSLLA) {
		// §7.1.1: a solicitation from :: is DAD, sent to the target's
		// solicited-node group, without a source link-layer address.
		return proto.DropMalformed
	}
	if info.Src.IsMulticast() {
		return proto.DropBadSource
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	at := p.att[ifc.Index()]
	if at == nil || !ifc.Up() {
		return proto.DropInterfaceDown
	}
	if a := at.addrs[target]; a != nil && a.tentative {
		// RFC 4862 §5.4.3: someone else is doing DAD for the address
		// we are trying: it is a duplicate. A solicitation from a
		// unicast source means the sender thinks the address is in
		// use and is resolving it: not ours to answer yet.
		if dad {
			p.duplicate(at, a, "neighbor solicitation from ::")
		}
		return proto.DropNone
	}
	if !hasAddr(ifc, target) {
		return proto.DropNotForUs // no proxy ND, no anycast
	}
	if !dad && hasSLLA && info.Src != target {
		// §7.2.3: create or update the sender's entry; a different
		// address makes it Stale. IsRouter stays what it was.
		f := neigh.UpdateFlags{Create: true, Override: true, IsRouter: at.isRouter[info.Src]}
		cache, src := at.cache, info.Src
		p.later(func() { cache.Update(src, slla, f) })
	}
	// §7.2.4: answer from the target address; to all-nodes when the
	// solicitation came from ::, unsolicited then.
	dst, solicited := info.Src, true
	if dad {
		dst, solicited = wire.IPv6AllNodes(), false
	}
	p.sendNA(ifc, target, dst, solicited)
	return proto.DropNone
}

// sendNA queues a neighbour advertisement for target (ours) to dst, with
// our link-layer address and the override flag (RFC 4861 §7.2.4: not
// anycast). Called with p.mu held.
func (p *Protocol) sendNA(ifc proto.Interface, target, dst netip.Addr, solicited bool) {
	mac := ifc.HardwareAddr()
	f := wire.NDPNeighborAdvertFields{
		Router:    p.forwarding(),
		Solicited: solicited,
		Override:  true,
		Target:    target,
		TargetLLA: &mac,
	}
	p.send(ifc, target, dst, 255, false, f.Len(), f.Encode)
}

// neighborAdvert handles a received NA (RFC 4861 §7.1.2 validation,
// §7.2.5 processing; RFC 4862 §5.4.4 for tentative targets).
func (p *Protocol) neighborAdvert(ifc proto.Interface, info proto.PacketInfo, m wire.ICMPv6) proto.DropReason {
	na, err := wire.ParseNDPNeighborAdvert(m.Body())
	if err != nil {
		return parseDrop(err)
	}
	if info.TTL != 255 || m.Code() != 0 {
		return proto.DropMalformed
	}
	target := na.Target()
	if target.IsMulticast() || info.Dst.IsMulticast() && na.Solicited() {
		return proto.DropMalformed
	}
	tlla, hasTLLA := linkAddrOption(na.Options(), wire.NDPOptTargetLLA)

	p.mu.Lock()
	defer p.mu.Unlock()
	at := p.att[ifc.Index()]
	if at == nil || !ifc.Up() {
		return proto.DropInterfaceDown
	}
	if a := at.addrs[target]; a != nil && a.tentative {
		// RFC 4862 §5.4.4: the address is in use elsewhere.
		p.duplicate(at, a, "neighbor advertisement")
		return proto.DropNone
	}
	if hasAddr(ifc, target) {
		// §7.2.5 leaves a conflict with an assigned address to be
		// logged.
		p.st.conflicts.Inc()
		p.log.Warn("ndp: another node advertises our address", "if", ifc.Name(), "addr", target, "lladdr", tlla)
		return proto.DropNone
	}
	mac, st, usable := at.cache.Lookup(target)
	if st == neigh.None || st == neigh.Permanent {
		return proto.DropNone // §7.2.5: no entry, silently discard
	}
	if hasTLLA {
		mac = tlla
	} else if !usable {
		return proto.DropNone // Incomplete without an address to learn
	}
	f := neigh.UpdateFlags{Solicited: na.Solicited(), Override: na.Override(), IsRouter: na.Router()}
	p.setRouterFlag(at, target, na.Router())
	if !na.Router() && at.routers[target] != nil {
		// §7.2.5: a router that is no longer one leaves the default
		// router list.
		p.removeRouter(at, target)
	}
	cache := at.cache
	p.later(func() { cache.Update(target, mac, f) })
	return proto.DropNone
}

// setRouterFlag records what ndp tells the cache about a's IsRouter flag.
// Called with p.mu held.
func (p *Protocol) setRouterFlag(at *attachment, a netip.Addr, isRouter bool) {
	if !isRouter {
		delete(at.isRouter, a)
		return
	}
	if len(at.isRouter) < maxRouterFlags {
		at.isRouter[a] = true
	}
}

// linkAddrOption finds the first link-layer address option of type t
// among validated options.
func linkAddrOption(opts []byte, t uint8) (wire.MAC, bool) {
	o, ok := wire.FindNDPOption(opts, t)
	if !ok {
		return wire.MAC{}, false
	}
	return o.LinkAddr()
}

// Resolver returns the neigh.Resolver that sends neighbour solicitations
// out ifc for IPv6 targets (IPv4 ones are ignored): to target's
// solicited-node group, or unicast to target (and the link address dst)
// for reachability probes, with a source link-layer address option. The
// source is an address of ifc (the one whose prefix holds target most
// specifically, a link-local one for link-local targets); an interface
// with no IPv6 address assigned sends nothing (counted as a bad_source
// drop: a solicitation from :: is DAD, which nobody answers with a
// cache entry).
func (p *Protocol) Resolver(ifc proto.Interface) neigh.Resolver { return resolver{p, ifc} }

type resolver struct {
	p   *Protocol
	ifc proto.Interface
}

func (r resolver) Solicit(target netip.Addr, dst wire.MAC) {
	target = target.WithZone("")
	if !target.Is6() || target.Is4In6() {
		return
	}
	src := sourceFor(r.ifc, target)
	if !src.IsValid() {
		r.p.ctr.Drop(proto.DropBadSource)
		return
	}
	ipDst := target
	if dst.IsZero() {
		ipDst = wire.SolicitedNodeMulticast(target)
	}
	r.p.mu.Lock()
	r.p.sendNS(r.ifc, src, ipDst, target, true)
	r.p.mu.Unlock()
	r.p.flush()
}

// sendNS queues a neighbour solicitation for target from src to dst, with
// our link-layer address unless sllA is false (DAD). Called with p.mu
// held.
func (p *Protocol) sendNS(ifc proto.Interface, src, dst, target netip.Addr, slla bool) {
	f := wire.NDPNeighborSolicitFields{Target: target}
	if slla {
		mac := ifc.HardwareAddr()
		f.SourceLLA = &mac
	}
	p.send(ifc, src, dst, 255, false, f.Len(), f.Encode)
}

// sourceFor picks the source of a solicitation for target: for a
// link-local target a link-local address, else the address whose prefix
// holds target most specifically, else a global address, else a
// link-local one.
func sourceFor(ifc proto.Interface, target netip.Addr) netip.Addr {
	var ll, global, best netip.Addr
	bits := -1
	for _, pfx := range ifc.Addrs() {
		a := pfx.Addr().WithZone("")
		if !a.Is6() || a.Is4In6() {
			continue
		}
		switch {
		case a.IsLinkLocalUnicast():
			if !ll.IsValid() {
				ll = a
			}
		case !global.IsValid():
			global = a
		}
		if pfx.Contains(target) && pfx.Bits() > bits {
			best, bits = a, pfx.Bits()
		}
	}
	switch {
	case target.IsLinkLocalUnicast() && ll.IsValid():
		return ll
	case best.IsValid():
		return best
	case global.IsValid():
		return global
	}
	return ll
}
