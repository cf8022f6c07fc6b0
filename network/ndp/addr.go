package ndp

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"ustack/wire"
)

// Address configuration (RFC 4862): link-local and SLAAC addresses,
// duplicate address detection for every address, lifetimes.
//
//	newAddress -> tentative: join the solicited-node group (MLD report),
//	   DADTransmits NS from :: to it, RetransTimer apart
//	     -> NS from :: or NA for it: duplicate, never assigned
//	     -> RetransTimer after the last NS: Host.AddAddress (preferred
//	        or deprecated), RS after the link-local address
//	   preferred lifetime ends -> Host.SetDeprecated
//	   valid lifetime ends     -> Host.RemoveAddress, leave the group

// Origin says where an address came from.
type Origin uint8

const (
	OriginLinkLocal Origin = iota + 1 // made from the MAC on Attach (RFC 4862 §5.3)
	OriginStatic                      // configured (AddAddress)
	OriginSLAAC                       // from an advertised prefix (RFC 4862 §5.5.3)
)

func (o Origin) String() string {
	switch o {
	case OriginLinkLocal:
		return "link-local"
	case OriginStatic:
		return "static"
	case OriginSLAAC:
		return "slaac"
	}
	return fmt.Sprintf("origin(%d)", uint8(o))
}

// address is an address ndp manages on an interface.
type address struct {
	prefix     netip.Prefix
	origin     Origin
	tentative  bool // DAD under way: not assigned
	duplicate  bool // DAD failed: never assigned
	deprecated bool // preferred lifetime over
	dadLeft    int  // DAD solicitations still to send
	// Lifetimes' ends; zero: infinite.
	preferredUntil, validUntil time.Time
	dadT, prefT, validT        timer
}

func (a *address) stopTimers() {
	a.dadT.stop()
	a.prefT.stop()
	a.validT.stop()
}

// assigned reports whether the stack has the address.
func (a *address) assigned() bool { return !a.tentative && !a.duplicate }

// AddrInfo describes an address ndp manages, for listing.
type AddrInfo struct {
	Prefix     netip.Prefix
	Origin     Origin
	Tentative  bool // DAD under way
	Duplicate  bool // DAD failed: not assigned
	Deprecated bool
	// PreferredUntil and ValidUntil are when the lifetimes end on the
	// interface's clock; zero: infinite.
	PreferredUntil, ValidUntil time.Time
}

// Errors.
var (
	ErrNotAttached = errors.New("ndp: interface not attached")
	ErrInvalid     = errors.New("ndp: invalid address")
	ErrExists      = errors.New("ndp: address exists")
)

// AddAddress configures a static IPv6 address (with its prefix length) on
// the interface: it goes through DAD (RFC 4862 §5.4, which static
// addresses need too) and is then assigned with Host.AddAddress (with its
// connected route); it never expires. A duplicate is logged and left
// unassigned (listed by Addresses). Host.JoinGroup (the solicited-node
// group) is called before AddAddress returns, and with DAD off so is
// Host.AddAddress: the caller must not hold locks the Host needs.
func (p *Protocol) AddAddress(ifIndex int, pfx netip.Prefix) error {
	a := pfx.Addr()
	if !pfx.IsValid() || !a.Is6() || a.Is4In6() || a.IsMulticast() || a.IsUnspecified() || a.IsLoopback() {
		return fmt.Errorf("%w: %v", ErrInvalid, pfx)
	}
	pfx = netip.PrefixFrom(a.WithZone(""), pfx.Bits())
	p.mu.Lock()
	at := p.att[ifIndex]
	if at == nil {
		p.mu.Unlock()
		return ErrNotAttached
	}
	if at.addrs[pfx.Addr()] != nil || hasAddr(at.ifc, pfx.Addr()) {
		p.mu.Unlock()
		return fmt.Errorf("%w: %v", ErrExists, pfx.Addr())
	}
	p.newAddress(at, pfx, OriginStatic, wire.NDPInfiniteLifetime, wire.NDPInfiniteLifetime)
	p.mu.Unlock()
	p.flush()
	return nil
}

// RemoveAddress forgets an address ndp manages (tentative, assigned or
// duplicate): its timers stop and its solicited-node group is left. It
// does not call Host.RemoveAddress: the caller takes the address off the
// interface. It reports whether ndp had the address. Host.LeaveGroup may
// be called before it returns.
func (p *Protocol) RemoveAddress(ifIndex int, a netip.Addr) bool {
	p.mu.Lock()
	at := p.att[ifIndex]
	var ok bool
	if at != nil {
		if ad := at.addrs[a.WithZone("")]; ad != nil {
			p.dropAddress(at, ad, false)
			ok = true
		}
	}
	p.mu.Unlock()
	p.flush()
	return ok
}

// Addresses lists the addresses ndp manages on the interface, sorted.
func (p *Protocol) Addresses(ifIndex int) []AddrInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	at := p.att[ifIndex]
	if at == nil {
		return nil
	}
	out := make([]AddrInfo, 0, len(at.addrs))
	for _, a := range at.addrs {
		out = append(out, AddrInfo{
			Prefix: a.prefix, Origin: a.origin,
			Tentative: a.tentative, Duplicate: a.duplicate, Deprecated: a.deprecated,
			PreferredUntil: a.preferredUntil, ValidUntil: a.validUntil,
		})
	}
	slices.SortFunc(out, func(x, y AddrInfo) int { return x.Prefix.Addr().Compare(y.Prefix.Addr()) })
	return out
}

// newAddress adds a tentative address and starts DAD. Called with p.mu
// held.
func (p *Protocol) newAddress(at *attachment, pfx netip.Prefix, o Origin, preferred, valid time.Duration) {
	a := &address{prefix: pfx, origin: o, tentative: true}
	at.addrs[pfx.Addr()] = a
	p.setLifetimes(at, a, preferred, valid)
	// RFC 4862 §5.4.2: join all-nodes (always joined) and the
	// solicited-node group before soliciting.
	p.joinGroup(at, wire.SolicitedNodeMulticast(pfx.Addr()), true)
	p.st.dadStarted.Inc()
	a.dadLeft = p.dadTransmits()
	p.dadStep(at, a)
}

// dadStep sends the next DAD solicitation (RFC 4862 §5.4.2: from ::, to
// the solicited-node group, no source link-layer address) and waits
// RetransTimer, or, when all are sent and RetransTimer passed, assigns
// the address. Called with p.mu held.
func (p *Protocol) dadStep(at *attachment, a *address) {
	if a.dadLeft > 0 {
		a.dadLeft--
		addr := a.prefix.Addr()
		p.sendNS(at.ifc, netip.IPv6Unspecified(), wire.SolicitedNodeMulticast(addr), addr, false)
		p.arm(at, &a.dadT, at.retrans, func() { p.dadStep(at, a) })
		return
	}
	a.tentative = false
	p.st.dadDone.Inc()
	host, idx, pfx, dep, route := at.host, at.ifc.Index(), a.prefix, a.deprecated, a.origin != OriginSLAAC
	p.later(func() {
		if err := host.AddAddress(idx, pfx, route); err != nil {
			p.log.Warn("ndp: address not added", "if", at.ifc.Name(), "addr", pfx, "err", err)
			return
		}
		if dep {
			host.SetDeprecated(idx, pfx.Addr(), true)
		}
	})
	p.log.Info("ndp: address assigned", "if", at.ifc.Name(), "addr", pfx, "origin", a.origin)
	if a.origin == OriginLinkLocal {
		p.startRS(at)
	}
}

// duplicate ends DAD for a with a duplicate found (RFC 4862 §5.4.5): the
// address is not assigned; it stays listed as duplicate until it is
// removed or its valid lifetime ends. Called with p.mu held.
func (p *Protocol) duplicate(at *attachment, a *address, why string) {
	p.st.duplicates.Inc()
	a.tentative, a.duplicate = false, true
	a.dadT.stop()
	a.prefT.stop()
	p.leaveGroup(at, wire.SolicitedNodeMulticast(a.prefix.Addr()), true)
	p.log.Error("ndp: duplicate address detected, not assigned", "if", at.ifc.Name(),
		"addr", a.prefix, "origin", a.origin, "evidence", why)
}

// dropAddress removes a from ndp's list, leaving its group unless DAD
// already left it; removeFromHost also takes it off the interface (its
// valid lifetime ended). Called with p.mu held.
func (p *Protocol) dropAddress(at *attachment, a *address, removeFromHost bool) {
	a.stopTimers()
	delete(at.addrs, a.prefix.Addr())
	if a.duplicate {
		return
	}
	wasAssigned := a.assigned()
	p.leaveGroup(at, wire.SolicitedNodeMulticast(a.prefix.Addr()), true)
	if removeFromHost && wasAssigned {
		host, idx, addr := at.host, at.ifc.Index(), a.prefix.Addr()
		p.later(func() { host.RemoveAddress(idx, addr) })
		p.log.Info("ndp: address expired", "if", at.ifc.Name(), "addr", a.prefix)
	}
}

// setLifetimes sets a's preferred and valid lifetimes from now (RFC 4862
// §5.5.3 (d), (e)); NDPInfiniteLifetime and above are infinite. Called
// with p.mu held.
func (p *Protocol) setLifetimes(at *attachment, a *address, preferred, valid time.Duration) {
	now := at.clk.Now()
	if valid >= wire.NDPInfiniteLifetime {
		a.validUntil = time.Time{}
		a.validT.stop()
	} else {
		a.validUntil = now.Add(valid)
		p.arm(at, &a.validT, valid, func() { p.dropAddress(at, a, true) })
	}
	if a.duplicate {
		return
	}
	switch {
	case preferred >= wire.NDPInfiniteLifetime:
		a.preferredUntil = time.Time{}
		a.prefT.stop()
		p.setDeprecated(at, a, false)
	case preferred == 0:
		a.preferredUntil = now
		a.prefT.stop()
		p.setDeprecated(at, a, true)
	default:
		a.preferredUntil = now.Add(preferred)
		p.setDeprecated(at, a, false)
		p.arm(at, &a.prefT, preferred, func() { p.setDeprecated(at, a, true) })
	}
}

// setDeprecated changes a's deprecated state, telling the stack if the
// address is assigned (RFC 4862 §5.5.4). Called with p.mu held.
func (p *Protocol) setDeprecated(at *attachment, a *address, dep bool) {
	if a.deprecated == dep {
		return
	}
	a.deprecated = dep
	if !a.assigned() {
		return // dadStep tells the stack when it assigns
	}
	host, idx, addr := at.host, at.ifc.Index(), a.prefix.Addr()
	p.later(func() { host.SetDeprecated(idx, addr, dep) })
}

// autoconf applies an advertised prefix with the A flag (RFC 4862 §5.5.3;
// the caller has dropped link-local prefixes). Called with p.mu held.
func (p *Protocol) autoconf(at *attachment, pi wire.NDPPrefixInfo) {
	if pi.PreferredLifetime > pi.ValidLifetime {
		return // (c)
	}
	var a *address
	for _, x := range at.addrs {
		if x.origin == OriginSLAAC && x.prefix.Masked() == pi.Prefix {
			a = x
			break
		}
	}
	if a == nil {
		// (d): a new prefix.
		if pi.ValidLifetime == 0 {
			return
		}
		addr, ok := wire.AddrWithInterfaceID(pi.Prefix, wire.EUI64(at.ifc.HardwareAddr()))
		if !ok {
			p.log.Info("ndp: prefix length is not 64, no address formed", "if", at.ifc.Name(), "prefix", pi.Prefix)
			return
		}
		if at.addrs[addr] != nil || hasAddr(at.ifc, addr) {
			return
		}
		p.newAddress(at, netip.PrefixFrom(addr, pi.Prefix.Bits()), OriginSLAAC, pi.PreferredLifetime, pi.ValidLifetime)
		return
	}
	// (e): refresh the lifetimes; the valid lifetime drops below two
	// hours only as the remaining lifetime runs out (a spoofed RA can't
	// cut it short).
	now := at.clk.Now()
	valid := pi.ValidLifetime
	if !a.validUntil.IsZero() || valid < wire.NDPInfiniteLifetime {
		remaining := wire.NDPInfiniteLifetime
		if !a.validUntil.IsZero() {
			remaining = a.validUntil.Sub(now)
		}
		switch {
		case valid > twoHours || valid > remaining:
		case remaining <= twoHours:
			valid = remaining
		default:
			valid = twoHours
		}
	}
	p.setLifetimes(at, a, pi.PreferredLifetime, valid)
}
