package ipv6

import (
	"net/netip"

	"ustack/proto"
)

// Address scopes (RFC 4291 §2.7 for multicast; RFC 6724 §3.1 maps
// unicast addresses onto the same values: link-local and loopback are
// link scope, everything else, unique local addresses included, global).
const (
	scopeInterface = 0x1
	scopeLink      = 0x2
	scopeGlobal    = 0xe
)

// mcastScope is the scope field of a multicast address.
func mcastScope(a netip.Addr) int { return int(a.As16()[1] & 0x0f) }

// scope is the scope of any IPv6 address.
func scope(a netip.Addr) int {
	switch {
	case a.IsMulticast():
		return mcastScope(a)
	case a.IsLinkLocalUnicast(), a.IsLoopback():
		return scopeLink
	}
	return scopeGlobal
}

// linkScoped reports whether a is only meaningful with an interface: a
// link-local unicast address or an interface- or link-local multicast
// group.
func linkScoped(a netip.Addr) bool { return scope(a) <= scopeLink }

// SourceSelector picks the source address for a packet to dst leaving by
// out, or returns the zero Addr when none fits. Route calls it when the
// caller did not bind a source and the route names none. It must be safe
// for concurrent use.
type SourceSelector func(out proto.Interface, dst netip.Addr) netip.Addr

// SetSourceSelector replaces the source address selection (for a full
// RFC 6724 implementation that knows address states and policies); nil
// restores the default, DefaultSource.
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

// DefaultSource is the default source address selection, a subset of
// RFC 6724 §5: the candidates are out's IPv6 addresses and, for
// destinations beyond the link, other interfaces' global ones; it prefers
// dst itself (rule 1), then an address of appropriate scope (rule 2:
// global for global destinations, link-local for link-local and
// link-scope multicast ones), then one of the outgoing interface (rule 5),
// then the longest common prefix with dst (rule 8).
func (p *Protocol) DefaultSource(out proto.Interface, dst netip.Addr) netip.Addr {
	var best netip.Addr
	bestOut := false
	consider := func(a netip.Addr, onOut bool) {
		if !a.Is6() || a.Is4In6() || a.IsMulticast() || a.IsUnspecified() {
			return
		}
		if !best.IsValid() || better(a, onOut, best, bestOut, dst) {
			best, bestOut = a, onOut
		}
	}
	if out != nil {
		for _, pf := range out.Addrs() {
			consider(pf.Addr(), true)
		}
	}
	if best == dst {
		return best
	}
	if !linkScoped(dst) {
		p.ifs.Each(func(ifc proto.Interface) {
			if out != nil && ifc.Index() == out.Index() {
				return
			}
			for _, pf := range ifc.Addrs() {
				if a := pf.Addr(); !linkScoped(a) {
					consider(a, false)
				}
			}
		})
	}
	return best
}

// better reports whether candidate a beats b as the source for dst
// (RFC 6724 §5 rules 1, 2, 5 and 8).
func better(a netip.Addr, aOut bool, b netip.Addr, bOut bool, dst netip.Addr) bool {
	if a == dst || b == dst {
		return a == dst
	}
	sa, sb, sd := scope(a), scope(b), scope(dst)
	if sa != sb {
		if sa < sb {
			return sa >= sd // a's scope suffices and is the smaller
		}
		return sb < sd
	}
	if aOut != bOut {
		return aOut
	}
	return commonPrefix(a, dst) > commonPrefix(b, dst)
}

// commonPrefix is the number of leading bits a and b share, up to the 64
// of an interface identifier's prefix (RFC 6724 §2.2 CommonPrefixLen).
func commonPrefix(a, b netip.Addr) int {
	x, y := a.As16(), b.As16()
	for i := range 8 {
		if d := x[i] ^ y[i]; d != 0 {
			n := i * 8
			for d&0x80 == 0 {
				n++
				d <<= 1
			}
			return n
		}
	}
	return 64
}
