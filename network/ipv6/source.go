package ipv6

import (
	"net/netip"
	"sync"

	"ustack/proto"
)

// Source address selection (RFC 6724 §5). The candidates are the outgoing
// interface's IPv6 addresses and, for destinations beyond the link, other
// interfaces' addresses of wider scope; the best is chosen by comparing
// them pairwise with the rules in order:
//
//	1 same address as dst       2 appropriate scope     3 avoid deprecated
//	4 home address (skipped: no Mobile IPv6)            5 outgoing interface
//	6 matching label (policy table of §2.1)             7 temporary (skipped:
//	no privacy addresses)       8 longest matching prefix
//
// Rule 3 needs to know which addresses are deprecated: the stack tells it
// with SetDeprecated (neighbour discovery decides, RFC 4862 §5.5.4).

// Address scopes (RFC 4291 §2.7 for multicast; RFC 6724 §3.1 maps
// unicast addresses onto the same values: link-local and loopback are
// link scope, the deprecated site-local fec0::/10 site scope, everything
// else, unique local addresses included, global).
const (
	scopeInterface = 0x1
	scopeLink      = 0x2
	scopeSite      = 0x5
	scopeGlobal    = 0xe
)

var siteLocal = netip.MustParsePrefix("fec0::/10")

// mcastScope is the scope field of a multicast address.
func mcastScope(a netip.Addr) int { return int(a.As16()[1] & 0x0f) }

// scope is the scope of any IPv6 address.
func scope(a netip.Addr) int {
	switch {
	case a.IsMulticast():
		return mcastScope(a)
	case a.IsLinkLocalUnicast(), a.IsLoopback():
		return scopeLink
	case siteLocal.Contains(a):
		return scopeSite
	}
	return scopeGlobal
}

// linkScoped reports whether a is only meaningful with an interface: a
// link-local unicast address or an interface- or link-local multicast
// group.
func linkScoped(a netip.Addr) bool { return scope(a) <= scopeLink }

// policy is an entry of the policy table.
type policy struct {
	prefix     netip.Prefix
	precedence int
	label      int
}

// defaultPolicy is the default policy table of RFC 6724 §2.1, longest
// prefixes first so that the first match is the longest.
var defaultPolicy = []policy{
	{netip.MustParsePrefix("::1/128"), 50, 0},
	{netip.MustParsePrefix("::ffff:0:0/96"), 35, 4},
	{netip.MustParsePrefix("::/96"), 1, 3},
	{netip.MustParsePrefix("2001::/32"), 5, 5},
	{netip.MustParsePrefix("2002::/16"), 30, 2},
	{netip.MustParsePrefix("3ffe::/16"), 1, 12},
	{netip.MustParsePrefix("fec0::/10"), 1, 11},
	{netip.MustParsePrefix("fc00::/7"), 3, 13},
	{netip.MustParsePrefix("::/0"), 40, 1},
}

// label is Label(a) from the default policy table.
func label(a netip.Addr) int {
	a = a.WithZone("")
	for _, pol := range defaultPolicy {
		if pol.prefix.Contains(a) {
			return pol.label
		}
	}
	return 1
}

// addrStates is the per-address state source selection needs: which
// assigned addresses are deprecated. Safe for concurrent use.
type addrStates struct {
	mu         sync.RWMutex
	deprecated map[addrKey]bool
}

type addrKey struct {
	ifIndex int
	addr    netip.Addr
}

// SetDeprecated marks an address of the interface deprecated (its
// preferred lifetime is over: RFC 4862 §5.5.4) or preferred again.
// Deprecated addresses still work but are avoided as sources of new
// communication (RFC 6724 rule 3). The stack clears the mark when it
// removes the address.
func (p *Protocol) SetDeprecated(ifIndex int, a netip.Addr, deprecated bool) {
	s := &p.addrState
	k := addrKey{ifIndex, a.WithZone("")}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !deprecated {
		delete(s.deprecated, k)
		return
	}
	if s.deprecated == nil {
		s.deprecated = make(map[addrKey]bool)
	}
	s.deprecated[k] = true
}

// Deprecated reports whether SetDeprecated marked the address.
func (p *Protocol) Deprecated(ifIndex int, a netip.Addr) bool {
	s := &p.addrState
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.deprecated[addrKey{ifIndex, a.WithZone("")}]
}

// SourceSelector picks the source address for a packet to dst leaving by
// out, or returns the zero Addr when none fits. Route calls it when the
// caller did not bind a source and the route names none. It must be safe
// for concurrent use.
type SourceSelector func(out proto.Interface, dst netip.Addr) netip.Addr

// SetSourceSelector replaces the source address selection (for other
// policies); nil restores the default, DefaultSource.
func (p *Protocol) SetSourceSelector(f SourceSelector) {
	if f == nil {
		p.selector.Store(nil)
		return
	}
	p.selector.Store(&f)
}

func (p *Protocol) selectSource(out proto.Interface, dst netip.Addr) netip.Addr {
	if f := p.selector.Load(); f != nil {
		return (*f)(out, dst)
	}
	return p.DefaultSource(out, dst)
}

// candidate is a possible source address with what the rules look at.
type candidate struct {
	addr       netip.Addr
	bits       int  // its prefix length (bounds CommonPrefixLen)
	onOut      bool // assigned to the outgoing interface
	deprecated bool
}

// DefaultSource is RFC 6724 source address selection (rules 1, 2, 3, 5,
// 6 and 8; see the top of this file). The candidates are out's IPv6
// unicast addresses and, unless dst is link-scoped, the other
// interfaces' addresses that are not.
func (p *Protocol) DefaultSource(out proto.Interface, dst netip.Addr) netip.Addr {
	dst = dst.WithZone("")
	var best candidate
	consider := func(ifIndex int, pf netip.Prefix, onOut bool) {
		a := pf.Addr().WithZone("")
		if !a.Is6() || a.Is4In6() || a.IsMulticast() || a.IsUnspecified() {
			return
		}
		c := candidate{addr: a, bits: pf.Bits(), onOut: onOut, deprecated: p.Deprecated(ifIndex, a)}
		if !best.addr.IsValid() || betterSource(c, best, dst) {
			best = c
		}
	}
	if out != nil {
		for _, pf := range out.Addrs() {
			consider(out.Index(), pf, true)
		}
	}
	if best.addr == dst {
		return best.addr
	}
	if !linkScoped(dst) {
		p.ifs.Each(func(ifc proto.Interface) {
			if out != nil && ifc.Index() == out.Index() {
				return
			}
			for _, pf := range ifc.Addrs() {
				if !linkScoped(pf.Addr()) {
					consider(ifc.Index(), pf, false)
				}
			}
		})
	}
	return best.addr
}

// betterSource reports whether a is to be preferred to b as the source
// for dst (RFC 6724 §5; a tie keeps b).
func betterSource(a, b candidate, dst netip.Addr) bool {
	// Rule 1: prefer the same address.
	if a.addr == dst || b.addr == dst {
		return a.addr == dst && b.addr != dst
	}
	// Rule 2: prefer appropriate scope: the smaller scope if it still
	// reaches dst, else the larger.
	sa, sb, sd := scope(a.addr), scope(b.addr), scope(dst)
	if sa != sb {
		if sa < sb {
			return sa >= sd
		}
		return sb < sd
	}
	// Rule 3: avoid deprecated addresses.
	if a.deprecated != b.deprecated {
		return b.deprecated
	}
	// Rule 4 (home addresses) does not apply: no Mobile IPv6.
	// Rule 5: prefer the outgoing interface.
	if a.onOut != b.onOut {
		return a.onOut
	}
	// Rule 6: prefer a matching label.
	if ld := label(dst); (label(a.addr) == ld) != (label(b.addr) == ld) {
		return label(a.addr) == ld
	}
	// Rule 7 (temporary addresses) does not apply: none are made.
	// Rule 8: the longest matching prefix.
	return commonPrefixLen(a, dst) > commonPrefixLen(b, dst)
}

// commonPrefixLen is CommonPrefixLen(S, D) of RFC 6724 §2.2: the leading
// bits s and d share, up to the length of s's prefix (64 when unknown).
func commonPrefixLen(s candidate, d netip.Addr) int {
	limit := s.bits
	if limit <= 0 || limit > 128 {
		limit = 64
	}
	x, y := s.addr.As16(), d.As16()
	n := 0
	for i := range 16 {
		if diff := x[i] ^ y[i]; diff != 0 {
			for diff&0x80 == 0 {
				n++
				diff <<= 1
			}
			break
		}
		n += 8
	}
	return min(n, limit)
}
