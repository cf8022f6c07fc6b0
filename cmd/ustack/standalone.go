package main

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"ustack/network/route"
	"ustack/stack"
	"ustack/wire"
)

// netFlags are the flags of tools that bring up a stack of their own.
type netFlags struct {
	link, addr, gw string
}

func (nf *netFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&nf.link, "link", "", "link to attach: afpacket:IFNAME, tap:IFNAME or tun:IFNAME")
	fs.StringVar(&nf.addr, "addr", "", "the stack's address with its prefix length, e.g. 10.200.1.2/24")
	fs.StringVar(&nf.gw, "gw", "", "default gateway (optional)")
}

// standalone is a stack of a tool's own, on one link.
type standalone struct {
	st   *stack.Stack
	addr netip.Prefix
}

// bringUp opens the link and configures the stack. Errors are one line.
func (c *cli) bringUp(nf *netFlags) (*standalone, error) {
	if nf.link == "" {
		return nil, errors.New("--link is required (e.g. --link afpacket:veth0)")
	}
	if nf.addr == "" {
		return nil, errors.New("--addr is required (e.g. --addr 10.200.1.2/24)")
	}
	addr, err := netip.ParsePrefix(nf.addr)
	if err != nil || addr.Addr().Is4In6() || addr.Addr().Zone() != "" {
		return nil, fmt.Errorf("--addr %q is not a CIDR prefix (e.g. 10.200.1.2/24 or fd00::2/64)", nf.addr)
	}
	var gw netip.Addr
	if nf.gw != "" {
		if gw, err = netip.ParseAddr(nf.gw); err != nil || gw.Is4() != addr.Addr().Is4() || gw.Is4In6() {
			return nil, fmt.Errorf("--gw %q is not an address of --addr's family", nf.gw)
		}
		if gw.Is6() && gw.IsLinkLocalUnicast() {
			gw = gw.WithZone("eth0") // a router's usual IPv6 address
		} else if !addr.Contains(gw) {
			return nil, fmt.Errorf("--gw %s is not on %s", gw, addr.Masked())
		}
	}
	ep, err := c.openLink(nf.link, 0, standaloneMAC(nf.link))
	if err != nil {
		return nil, err
	}
	st := stack.New(stack.Options{Name: "ustack"})
	if _, err := st.AddInterface("eth0", ep); err != nil {
		ep.Close()
		st.Close()
		return nil, err
	}
	if err := st.AddAddress("eth0", addr); err != nil {
		st.Close()
		return nil, err
	}
	if gw.IsValid() {
		def := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		if gw.Is6() {
			def = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		}
		r := route.Route{Dst: def, Gateway: gw}
		if err := st.AddRoute(r); err != nil {
			st.Close()
			return nil, err
		}
	}
	if addr.Addr().Is6() {
		// Duplicate address detection (RFC 4862 §5.4) runs before the
		// address can be used.
		if err := waitAssigned(st, addr.Addr(), 5*time.Second); err != nil {
			st.Close()
			return nil, fmt.Errorf("--addr %w", err)
		}
	}
	return &standalone{st: st, addr: addr}, nil
}

// scoped gives a link-local IPv6 destination the zone of the stack's one
// interface, eth0 (RFC 4007 §11: a link-local address means nothing
// without its link). The zone may be left out, or name eth0 or the host
// device of --link ("fe80::1%veth0" for --link afpacket:veth0). Other
// addresses must not have a zone.
func (nf *netFlags) scoped(a netip.Addr) (netip.Addr, error) {
	if !a.Is6() || !a.IsLinkLocalUnicast() {
		if a.Zone() != "" {
			return a, fmt.Errorf("%s: only link-local addresses take a zone", a)
		}
		return a, nil
	}
	_, dev, _ := strings.Cut(nf.link, ":")
	switch a.Zone() {
	case "", "eth0", dev:
		return a.WithZone("eth0"), nil
	}
	return a, fmt.Errorf("%s: zone %q is not the link's device (%s)", a, a.Zone(), dev)
}

// waitLinkLocal waits until the stack's link-local address on eth0 has
// passed duplicate address detection, so that it is the source of
// packets to link-local destinations (RFC 6724 §5 rule 2).
func (s *standalone) waitLinkLocal() error {
	mac := s.st.Interface("eth0").HardwareAddr()
	if mac.IsZero() {
		return errors.New("the link has no MAC, so no link-local address")
	}
	return waitAssigned(s.st, wire.LinkLocalFromMAC(mac), 5*time.Second)
}

// waitAssigned waits until eth0 has a: an IPv6 address is assigned once
// DAD has passed.
func waitAssigned(st *stack.Stack, a netip.Addr, timeout time.Duration) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(timeout)
	for {
		for _, p := range st.Interface("eth0").Addrs() {
			if p.Addr() == a {
				return nil
			}
		}
		for _, ai := range st.NDP().Addresses(st.Interface("eth0").Index()) {
			if ai.Prefix.Addr() == a && ai.Duplicate {
				return fmt.Errorf("%s: duplicate address detected on the link", a)
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not assigned after %v", a, timeout)
		}
		<-tick.C
	}
}

func (s *standalone) Close() { s.st.Close() }
