package main

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"

	"ustack/network/route"
	"ustack/stack"
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
	if err != nil || !addr.Addr().Is4() {
		return nil, fmt.Errorf("--addr %q is not an IPv4 CIDR prefix (e.g. 10.200.1.2/24)", nf.addr)
	}
	var gw netip.Addr
	if nf.gw != "" {
		if gw, err = netip.ParseAddr(nf.gw); err != nil || !gw.Is4() {
			return nil, fmt.Errorf("--gw %q is not an IPv4 address", nf.gw)
		}
		if !addr.Contains(gw) {
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
		r := route.Route{Dst: netip.PrefixFrom(netip.IPv4Unspecified(), 0), Gateway: gw}
		if err := st.AddRoute(r); err != nil {
			st.Close()
			return nil, err
		}
	}
	return &standalone{st: st, addr: addr}, nil
}

func (s *standalone) Close() { s.st.Close() }
