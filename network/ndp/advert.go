package ndp

import (
	"fmt"
	"slices"
	"time"

	"ustack/buf"
	"ustack/network/neigh"
	"ustack/proto"
	"ustack/wire"
)

// Router advertisements sent (RFC 4861 §6.2), for a stack that forwards:
//
//	Advertise -> join all-routers, first RA after a random delay
//	  -> unsolicited RAs every [MinInterval, MaxInterval], the first
//	     MaxInitialRtrAdvertisements at most MaxInitialRtrAdvertInterval
//	     apart (§6.2.4)
//	  -> RS received: an RA to all-nodes within MaxRADelayTime, never
//	     sooner than MinDelayBetweenRAs after the last one (§6.2.6)
//	StopAdvertising or Detach -> a final RA with router lifetime 0
//	     (§6.2.5), leave all-routers
//
// RAs go out only while the stack forwards (Config.Forwarding) and the
// interface has a link-local address to send them from (§6.2.8).

// Router constants (RFC 4861 §10).
const (
	MaxInitialRtrAdvertInterval = 16 * time.Second // MAX_INITIAL_RTR_ADVERT_INTERVAL
	MaxInitialRtrAdvertisements = 3                // MAX_INITIAL_RTR_ADVERTISEMENTS
	MinDelayBetweenRAs          = 3 * time.Second  // MIN_DELAY_BETWEEN_RAS
	MaxRADelayTime              = 500 * time.Millisecond
	// DefaultMaxRtrAdvInterval is MaxRtrAdvInterval's default (§6.2.1).
	DefaultMaxRtrAdvInterval = 600 * time.Second
)

// AdvertConfig is what an interface advertises (the router
// configuration variables of RFC 4861 §6.2.1). The zero value advertises a
// default router with no prefixes and the default intervals.
type AdvertConfig struct {
	// MaxInterval is MaxRtrAdvInterval (4 s to 1800 s; 0: 600 s).
	// MinInterval is MinRtrAdvInterval (3 s to 0.75 MaxInterval; 0:
	// MaxInterval/3).
	MaxInterval, MinInterval time.Duration
	// RouterLifetime is AdvDefaultLifetime: 0 means 3 MaxInterval,
	// negative advertises 0 (not a default router).
	RouterLifetime time.Duration
	// Managed and Other are the M and O flags.
	Managed, Other bool
	// CurHopLimit, ReachableTime and RetransTimer are advertised as they
	// are (0: unspecified).
	CurHopLimit                 uint8
	ReachableTime, RetransTimer time.Duration
	// MTU is advertised in an MTU option when not 0.
	MTU uint32
	// Prefixes are the prefix information options: on-link (L) and
	// autonomous (A) flags, valid and preferred lifetimes
	// (wire.NDPInfiniteLifetime: infinite).
	Prefixes []wire.NDPPrefixInfo
}

// normalize fills in the defaults and checks the ranges of §6.2.1.
func (c AdvertConfig) normalize() (AdvertConfig, error) {
	if c.MaxInterval == 0 {
		c.MaxInterval = DefaultMaxRtrAdvInterval
	}
	if c.MaxInterval < 4*time.Second || c.MaxInterval > 1800*time.Second {
		return c, fmt.Errorf("%w: MaxRtrAdvInterval %v", ErrInvalid, c.MaxInterval)
	}
	if c.MinInterval == 0 {
		c.MinInterval = c.MaxInterval / 3
	}
	if c.MinInterval < 3*time.Second || c.MinInterval > c.MaxInterval*3/4 {
		return c, fmt.Errorf("%w: MinRtrAdvInterval %v", ErrInvalid, c.MinInterval)
	}
	switch {
	case c.RouterLifetime == 0:
		c.RouterLifetime = 3 * c.MaxInterval
	case c.RouterLifetime < 0:
		c.RouterLifetime = 0
	case c.RouterLifetime < c.MaxInterval || c.RouterLifetime > 9000*time.Second:
		return c, fmt.Errorf("%w: AdvDefaultLifetime %v", ErrInvalid, c.RouterLifetime)
	}
	if c.MTU != 0 && c.MTU < wire.IPv6MinMTU {
		return c, fmt.Errorf("%w: MTU %d", ErrInvalid, c.MTU)
	}
	for _, pi := range c.Prefixes {
		if !pi.Prefix.IsValid() || !pi.Prefix.Addr().Is6() || pi.Prefix.Addr().IsLinkLocalUnicast() ||
			pi.Prefix.Addr().IsMulticast() || pi.PreferredLifetime > pi.ValidLifetime {
			return c, fmt.Errorf("%w: prefix %v", ErrInvalid, pi.Prefix)
		}
	}
	c.Prefixes = slices.Clone(c.Prefixes)
	return c, nil
}

// advertiser is an interface's advertising state. Guarded by Protocol.mu.
type advertiser struct {
	cfg  AdvertConfig
	t    timer     // next multicast RA
	sent int       // RAs sent since advertising began
	last time.Time // when the last multicast RA was sent
}

// Advertise makes the interface send router advertisements with cfg (RFC
// 4861 §6.2) while the stack forwards; calling it again replaces the
// configuration and restarts the initial fast advertisements. It joins
// all-routers (ff02::2) on the interface (Host.JoinGroup may be called
// before it returns).
func (p *Protocol) Advertise(ifIndex int, cfg AdvertConfig) error {
	cfg, err := cfg.normalize()
	if err != nil {
		return err
	}
	p.mu.Lock()
	at := p.att[ifIndex]
	if at == nil {
		p.mu.Unlock()
		return ErrNotAttached
	}
	if at.adv == nil {
		at.adv = &advertiser{}
		p.joinGroup(at, wire.IPv6AllRouters(), true)
	}
	at.adv.cfg, at.adv.sent = cfg, 0
	// §6.2.4: the first advertisement after a random delay, bounded as
	// the initial ones are.
	p.scheduleRA(at, p.randDuration(min(cfg.MaxInterval, MaxInitialRtrAdvertInterval)))
	p.mu.Unlock()
	p.flush()
	return nil
}

// StopAdvertising ends advertising on the interface with a final RA whose
// router lifetime is 0 (RFC 4861 §6.2.5), so hosts drop us as a default
// router at once, and leaves all-routers. It reports whether the
// interface was advertising.
func (p *Protocol) StopAdvertising(ifIndex int) bool {
	p.mu.Lock()
	at := p.att[ifIndex]
	ok := at != nil && at.adv != nil
	if ok {
		p.stopAdvertising(at, true)
	}
	p.mu.Unlock()
	p.flush()
	return ok
}

// Advertising returns the interface's advertised configuration (defaults
// filled in), or false when it does not advertise.
func (p *Protocol) Advertising(ifIndex int) (AdvertConfig, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	at := p.att[ifIndex]
	if at == nil || at.adv == nil {
		return AdvertConfig{}, false
	}
	c := at.adv.cfg
	c.Prefixes = slices.Clone(c.Prefixes)
	return c, true
}

// stopAdvertising sends the final RA (through Sender with viaSender,
// else queued straight to the link by the caller) and forgets the
// advertiser. Called with p.mu held.
func (p *Protocol) stopAdvertising(at *attachment, viaSender bool) {
	adv := at.adv
	adv.t.stop()
	at.adv = nil
	if viaSender {
		p.leaveGroup(at, wire.IPv6AllRouters(), true)
		if adv.sent > 0 && p.forwarding() {
			p.sendRA(at, adv, true)
		}
	}
}

// scheduleRA arms the advertiser's timer to send a multicast RA after d.
// Called with p.mu held.
func (p *Protocol) scheduleRA(at *attachment, d time.Duration) {
	adv := at.adv
	p.arm(at, &adv.t, d, func() { p.periodicRA(at, adv) })
}

// periodicRA sends one multicast RA and schedules the next (§6.2.4).
// Called with p.mu held.
func (p *Protocol) periodicRA(at *attachment, adv *advertiser) {
	if at.adv != adv {
		return
	}
	if p.forwarding() {
		p.sendRA(at, adv, false)
	}
	c := adv.cfg
	next := c.MinInterval + p.randDuration(c.MaxInterval-c.MinInterval+1)
	if adv.sent < MaxInitialRtrAdvertisements {
		next = min(next, MaxInitialRtrAdvertInterval)
	}
	p.scheduleRA(at, next)
}

// routerSolicit answers a router solicitation (RFC 4861 §6.1.1
// validation, §6.2.6 processing) on an advertising interface.
func (p *Protocol) routerSolicit(ifc proto.Interface, info proto.PacketInfo, m wire.ICMPv6) proto.DropReason {
	rs, err := wire.ParseNDPRouterSolicit(m.Body())
	if err != nil {
		return parseDrop(err)
	}
	if info.TTL != 255 || m.Code() != 0 {
		return proto.DropMalformed
	}
	slla, hasSLLA := linkAddrOption(rs.Options(), wire.NDPOptSourceLLA)
	if info.Src.IsUnspecified() && hasSLLA {
		return proto.DropMalformed
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	at := p.att[ifc.Index()]
	if at == nil || !ifc.Up() {
		return proto.DropInterfaceDown
	}
	if at.adv == nil || !p.forwarding() {
		return proto.DropUnsupported // hosts discard solicitations
	}
	if hasSLLA {
		// §6.2.6: create or update the sender's entry (Stale when new
		// or changed); it is a host.
		p.setRouterFlag(at, info.Src, false)
		cache, src := at.cache, info.Src
		p.later(func() { cache.Update(src, slla, neigh.UpdateFlags{Create: true, Override: true}) })
	}
	adv := at.adv
	now := at.clk.Now()
	when := now.Add(p.randDuration(MaxRADelayTime + 1))
	if !adv.last.IsZero() && now.Sub(adv.last) < MinDelayBetweenRAs {
		// Rate limit: MIN_DELAY_BETWEEN_RAS after the last one, plus
		// the random delay.
		when = adv.last.Add(MinDelayBetweenRAs + when.Sub(now))
	}
	if adv.t.pending() && !adv.t.when.After(when) {
		return proto.DropNone // one is due sooner anyway
	}
	p.scheduleRA(at, when.Sub(now))
	return proto.DropNone
}

// raFields builds the advertisement; final sets the router lifetime to 0.
func (at *attachment) raFields(adv *advertiser, final bool) wire.NDPRouterAdvertFields {
	c := adv.cfg
	mac := at.ifc.HardwareAddr()
	f := wire.NDPRouterAdvertFields{
		CurHopLimit:    c.CurHopLimit,
		Managed:        c.Managed,
		Other:          c.Other,
		RouterLifetime: c.RouterLifetime,
		ReachableTime:  c.ReachableTime,
		RetransTimer:   c.RetransTimer,
		MTU:            c.MTU,
		Prefixes:       c.Prefixes,
	}
	if !mac.IsZero() {
		f.SourceLLA = &mac
	}
	if final {
		f.RouterLifetime = 0
	}
	return f
}

// sendRA queues a multicast RA to all-nodes from the interface's
// link-local address with hop limit 255 (§6.2.8: without a link-local
// address there is none). Called with p.mu held.
func (p *Protocol) sendRA(at *attachment, adv *advertiser, final bool) {
	src := at.linkLocal()
	if !src.IsValid() {
		return
	}
	f := at.raFields(adv, final)
	adv.sent++
	adv.last = at.clk.Now()
	p.send(at.ifc, src, wire.IPv6AllNodes(), 255, false, f.Len(), f.Encode)
}

// finalRALink writes the final RA of an interface being detached straight
// to its link (the stack has already taken the interface out of its
// table, so IPv6 output would refuse it). Called with p.mu held; the
// returned function writes, and is called without it.
func (p *Protocol) finalRALink(at *attachment) func() {
	adv := at.adv
	p.stopAdvertising(at, false)
	src := at.linkLocal()
	if adv.sent == 0 || !src.IsValid() || !p.forwarding() {
		return nil
	}
	f := at.raFields(adv, true)
	n := f.Len()
	dst := wire.IPv6AllNodes()
	pkt := buf.New(buf.DefaultHeadroom, wire.IPv6HeaderLen+n)
	b := pkt.Bytes()
	h := wire.IPv6Fields{PayloadLen: n, NextHeader: wire.IPProtoICMPv6, HopLimit: 255, Src: src, Dst: dst}
	h.Encode(b)
	f.Encode(b[wire.IPv6HeaderLen:])
	wire.ICMPv6(b[wire.IPv6HeaderLen:]).UpdateChecksum(src, dst)
	p.st.out[wire.ICMPv6RouterAdvert].Inc()
	ifc := at.ifc
	return func() {
		p.ctr.OutPackets.Inc()
		p.ctr.OutBytes.Add(uint64(n))
		if err := ifc.OutputLink(wire.MulticastMACv6(dst.As16()), wire.EtherTypeIPv6, pkt); err != nil {
			p.ctr.Drop(proto.DropLinkError)
		}
	}
}
