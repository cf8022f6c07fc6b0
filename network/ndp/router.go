package ndp

import (
	"net/netip"
	"slices"
	"time"

	"ustack/network/neigh"
	"ustack/network/route"
	"ustack/proto"
	"ustack/wire"
)

// Router discovery (RFC 4861 §6.3) and redirects (§8.3).

// defaultRouter is an entry of the Default Router List (§6.3.4): a default
// route via the router, removed when its lifetime runs out.
type defaultRouter struct {
	r       route.Route
	expires time.Time
	t       timer
}

// onLinkPrefix is an entry of the Prefix List (§6.3.4): an on-link route,
// removed when its valid lifetime runs out (zero expires: infinite).
type onLinkPrefix struct {
	r       route.Route
	expires time.Time
	t       timer
}

// redirect is a host route learned from a redirect (§8.3).
type redirect struct {
	r route.Route
	t timer
}

// RouterInfo is an entry of the Default Router List, for listing.
type RouterInfo struct {
	Addr    netip.Addr
	Expires time.Time // on the interface's clock
}

// PrefixInfo is an entry of the Prefix List (on-link prefixes), for
// listing.
type PrefixInfo struct {
	Prefix  netip.Prefix
	Expires time.Time // zero: never
}

// Routers lists the interface's default routers, sorted.
func (p *Protocol) Routers(ifIndex int) []RouterInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	at := p.att[ifIndex]
	if at == nil {
		return nil
	}
	out := make([]RouterInfo, 0, len(at.routers))
	for a, dr := range at.routers {
		out = append(out, RouterInfo{a, dr.expires})
	}
	slices.SortFunc(out, func(x, y RouterInfo) int { return x.Addr.Compare(y.Addr) })
	return out
}

// Prefixes lists the interface's on-link prefixes learned from router
// advertisements, sorted.
func (p *Protocol) Prefixes(ifIndex int) []PrefixInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	at := p.att[ifIndex]
	if at == nil {
		return nil
	}
	out := make([]PrefixInfo, 0, len(at.prefixes))
	for pfx, pf := range at.prefixes {
		out = append(out, PrefixInfo{pfx, pf.expires})
	}
	slices.SortFunc(out, func(x, y PrefixInfo) int { return x.Prefix.Addr().Compare(y.Prefix.Addr()) })
	return out
}

// startRS begins router solicitation (§6.3.7) unless the stack forwards.
// Called with p.mu held.
func (p *Protocol) startRS(at *attachment) {
	if p.forwarding() || at.rsDone || at.rsT.pending() || at.rsSent > 0 {
		return
	}
	p.solicitRouters(at)
}

// solicitRouters sends one RS to all-routers and schedules the next, up
// to the configured count or until an advertisement arrives. The source
// is our link-local address with our link-layer address, or :: without
// one (§4.1). Called with p.mu held.
func (p *Protocol) solicitRouters(at *attachment) {
	if at.rsDone || at.rsSent >= p.routerSolicitations() || p.forwarding() {
		return
	}
	at.rsSent++
	f := wire.NDPRouterSolicitFields{}
	src := at.linkLocal()
	if src.IsValid() {
		mac := at.ifc.HardwareAddr()
		f.SourceLLA = &mac
	} else {
		src = netip.IPv6Unspecified()
	}
	p.send(at.ifc, src, wire.IPv6AllRouters(), 255, false, f.Len(), f.Encode)
	if at.rsSent < p.routerSolicitations() {
		p.arm(at, &at.rsT, RtrSolicitationInterval, func() { p.solicitRouters(at) })
	}
}

// maxReachableTime bounds an advertised Reachable Time (RFC 4861 §6.2.1:
// MAX_REACHABLE_TIME).
const maxReachableTime = time.Hour

// raInfo is what routerAdvert gathered from a validated advertisement.
type raInfo struct {
	slla     wire.MAC
	hasSLLA  bool
	mtu      uint32
	prefixes []wire.NDPPrefixInfo
}

// routerAdvert handles a received RA (RFC 4861 §6.1.2 validation, §6.3.4
// processing; RFC 4862 §5.5.3 for its prefixes).
func (p *Protocol) routerAdvert(ifc proto.Interface, info proto.PacketInfo, m wire.ICMPv6) proto.DropReason {
	ra, err := wire.ParseNDPRouterAdvert(m.Body())
	if err != nil {
		return parseDrop(err)
	}
	if !info.Src.IsLinkLocalUnicast() {
		return proto.DropBadSource
	}
	if info.TTL != 255 || m.Code() != 0 {
		return proto.DropMalformed
	}
	var ri raInfo
	var pbuf [8]wire.NDPPrefixInfo
	ri.prefixes = pbuf[:0]
	it := wire.NewNDPOptIter(ra.Options())
	for o, ok := it.Next(); ok; o, ok = it.Next() {
		switch o.Type {
		case wire.NDPOptSourceLLA:
			if !ri.hasSLLA {
				ri.slla, ri.hasSLLA = o.LinkAddr()
			}
		case wire.NDPOptMTU:
			if mtu, ok := o.MTU(); ok {
				ri.mtu = mtu
			}
		case wire.NDPOptPrefixInfo:
			// A prefix length over 128 (or a bad option length)
			// makes PrefixInfo fail: that option is dropped and
			// counted, the rest of the RA still counts (RFC 4861
			// §6.3.4 processes options independently, as Linux).
			if pi, ok := o.PrefixInfo(); ok {
				ri.prefixes = append(ri.prefixes, pi)
			} else {
				p.ctr.Drop(proto.DropBadOption)
			}
		}
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	at := p.att[ifc.Index()]
	if at == nil || !ifc.Up() {
		return proto.DropInterfaceDown
	}
	if p.forwarding() {
		return proto.DropUnsupported // §6.2.7: routers only check consistency
	}
	src, lifetime := info.Src, ra.RouterLifetime()
	if lifetime > 0 {
		// §6.3.7: a valid advertisement with a router lifetime ends
		// solicitation.
		at.rsDone = true
		at.rsT.stop()
	}
	if ri.hasSLLA {
		// §6.3.4: record the router's address, creating the entry;
		// a different one makes it Stale; IsRouter is set.
		p.setRouterFlag(at, src, true)
		cache, mac := at.cache, ri.slla
		p.later(func() {
			cache.Update(src, mac, neigh.UpdateFlags{Create: true, Override: true, IsRouter: true})
		})
	}
	host, idx, cache := at.host, ifc.Index(), at.cache
	if hl := ra.CurHopLimit(); hl != 0 {
		p.later(func() { host.SetHopLimit(idx, hl) })
	}
	if rt := min(ra.ReachableTime(), maxReachableTime); rt != 0 && rt != at.baseReachable {
		// §6.3.4: a new BaseReachableTime draws ReachableTime again.
		at.baseReachable = rt
		p.later(func() { cache.SetBaseReachableTime(rt) })
	}
	if rt := ra.RetransTimer(); rt != 0 {
		at.retrans = rt
		p.later(func() { cache.SetRetransTimer(rt) })
	}
	// The host keeps IPv6's own link MTU and ignores repeats, so every
	// advertised value is passed on: a later RA may raise the MTU back.
	if ri.mtu >= wire.IPv6MinMTU {
		mtu := int(ri.mtu)
		p.later(func() {
			if err := host.SetMTU(idx, mtu); err != nil {
				p.log.Debug("ndp: advertised MTU refused", "if", ifc.Name(), "mtu", mtu, "err", err)
			}
		})
	}
	p.updateRouter(at, src, lifetime)
	for _, pi := range ri.prefixes {
		if pi.Prefix.Addr().IsLinkLocalUnicast() || pi.Prefix.Addr().IsMulticast() || pi.Prefix.Bits() == 0 {
			continue // §6.3.4, RFC 4862 §5.5.3 (b): ignored
		}
		if pi.OnLink {
			p.updatePrefix(at, pi)
		}
		if pi.Autonomous && !p.cfg.NoSLAAC {
			p.autoconf(at, pi)
		}
	}
	return proto.DropNone
}

// updateRouter applies an advertisement's router lifetime to the Default
// Router List (§6.3.4). Called with p.mu held.
func (p *Protocol) updateRouter(at *attachment, src netip.Addr, lifetime time.Duration) {
	dr := at.routers[src]
	switch {
	case dr == nil && lifetime == 0:
		return
	case dr == nil:
		dr = &defaultRouter{r: route.Route{
			Dst:     netip.PrefixFrom(netip.IPv6Unspecified(), 0),
			Gateway: src,
			IfIndex: at.ifc.Index(),
			Metric:  RouteMetric,
			Origin:  route.OriginRA,
		}}
		at.routers[src] = dr
		host, r := at.host, dr.r
		p.later(func() {
			if err := host.AddRoute(r); err != nil {
				p.log.Debug("ndp: default route", "route", r, "err", err)
			}
		})
		p.log.Info("ndp: default router", "if", at.ifc.Name(), "router", src, "lifetime", lifetime)
	case lifetime == 0:
		p.removeRouter(at, src)
		return
	}
	dr.expires = at.clk.Now().Add(lifetime)
	p.arm(at, &dr.t, lifetime, func() { p.removeRouter(at, src) })
}

// removeRouter takes a router off the Default Router List. Called with
// p.mu held.
func (p *Protocol) removeRouter(at *attachment, addr netip.Addr) {
	dr := at.routers[addr]
	if dr == nil {
		return
	}
	dr.t.stop()
	delete(at.routers, addr)
	host, r := at.host, dr.r
	p.later(func() { host.DeleteRoute(r) })
	p.log.Info("ndp: default router gone", "if", at.ifc.Name(), "router", addr)
}

// updatePrefix applies an on-link prefix to the Prefix List (§6.3.4).
// Called with p.mu held.
func (p *Protocol) updatePrefix(at *attachment, pi wire.NDPPrefixInfo) {
	pf := at.prefixes[pi.Prefix]
	valid := pi.ValidLifetime
	switch {
	case pf == nil && valid == 0:
		return
	case pf == nil:
		pf = &onLinkPrefix{r: route.Route{
			Dst:     pi.Prefix,
			IfIndex: at.ifc.Index(),
			Metric:  RouteMetric,
			Origin:  route.OriginRA,
		}}
		at.prefixes[pi.Prefix] = pf
		host, r := at.host, pf.r
		p.later(func() {
			if err := host.AddRoute(r); err != nil {
				p.log.Debug("ndp: on-link route", "route", r, "err", err)
			}
		})
	case valid == 0:
		p.removePrefix(at, pi.Prefix)
		return
	}
	if valid >= wire.NDPInfiniteLifetime {
		pf.expires = time.Time{}
		pf.t.stop()
		return
	}
	pf.expires = at.clk.Now().Add(valid)
	prefix := pi.Prefix
	p.arm(at, &pf.t, valid, func() { p.removePrefix(at, prefix) })
}

// removePrefix takes a prefix off the Prefix List. Called with p.mu held.
func (p *Protocol) removePrefix(at *attachment, prefix netip.Prefix) {
	pf := at.prefixes[prefix]
	if pf == nil {
		return
	}
	pf.t.stop()
	delete(at.prefixes, prefix)
	host, r := at.host, pf.r
	p.later(func() { host.DeleteRoute(r) })
}

// redirect handles a received redirect (RFC 4861 §8.1 validation, §8.3
// processing).
func (p *Protocol) redirect(ifc proto.Interface, info proto.PacketInfo, m wire.ICMPv6) proto.DropReason {
	rd, err := wire.ParseNDPRedirect(m.Body())
	if err != nil {
		return parseDrop(err)
	}
	if !info.Src.IsLinkLocalUnicast() {
		return proto.DropBadSource
	}
	if info.TTL != 255 || m.Code() != 0 {
		return proto.DropMalformed
	}
	target, dst := rd.Target(), rd.Dst()
	if dst.IsMulticast() || !target.IsLinkLocalUnicast() && target != dst {
		return proto.DropMalformed
	}
	if p.forwarding() {
		return proto.DropUnsupported // §8.1: routers don't take redirects
	}
	// §8.1: only the router we would send dst to now may redirect us.
	// (Route is asked without p.mu: it may take locks of its own.)
	if r, err := p.snd.Route(dst, netip.Addr{}, ifc.Index()); err != nil ||
		r.IfIndex != ifc.Index() || r.NextHop.WithZone("") != info.Src || r.NextHop == dst {
		p.st.redirectsBad.Inc()
		return proto.DropBadSource
	}
	tlla, hasTLLA := linkAddrOption(rd.Options(), wire.NDPOptTargetLLA)

	p.mu.Lock()
	defer p.mu.Unlock()
	at := p.att[ifc.Index()]
	if at == nil || !ifc.Up() {
		return proto.DropInterfaceDown
	}
	p.st.redirectsIn.Inc()
	if hasTLLA {
		// §8.3: create or update the target's entry (Stale when new
		// or changed); a target other than dst is a router.
		isRouter := target != dst || at.isRouter[target]
		p.setRouterFlag(at, target, isRouter)
		cache := at.cache
		p.later(func() {
			cache.Update(target, tlla, neigh.UpdateFlags{Create: true, Override: true, IsRouter: isRouter})
		})
	}
	r := route.Route{
		Dst:     netip.PrefixFrom(dst, 128),
		IfIndex: ifc.Index(),
		Origin:  route.OriginRedirect,
	}
	if target != dst {
		r.Gateway = target
	}
	host := at.host
	if old := at.redirects[dst]; old != nil {
		old.t.stop()
		oldR := old.r
		p.later(func() { host.DeleteRoute(oldR) })
	}
	rdr := &redirect{r: r}
	at.redirects[dst] = rdr
	p.later(func() {
		if err := host.AddRoute(r); err != nil {
			p.log.Debug("ndp: redirect route", "route", r, "err", err)
		}
	})
	p.arm(at, &rdr.t, RedirectLifetime, func() {
		if at.redirects[dst] == rdr {
			delete(at.redirects, dst)
			p.later(func() { host.DeleteRoute(r) })
		}
	})
	return proto.DropNone
}
