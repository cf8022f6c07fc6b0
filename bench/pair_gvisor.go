package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/ethernet"
	gpipe "gvisor.dev/gvisor/pkg/tcpip/link/pipe"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// gvisorPair is two gVisor netstacks joined by gVisor's own in-memory
// link, pkg/tcpip/link/pipe, wrapped in link/ethernet so that both
// systems frame in Ethernet and resolve with ARP, as ustack's pipe does.
// gVisor's pipe delivers each written packet to the peer's stack on the
// writer's goroutine (ustack's pipe hands frames to a reader goroutine);
// it advertises no capabilities, so gVisor computes and verifies every
// checksum in software, like ustack on its pipe. Everything else is
// gVisor's default: IPv4 and ARP, TCP with SACK and receive-buffer
// moderation on (its defaults in this version), Reno, RACK, 1 MB default
// buffers; sockets are adapters/gonet's.
type gvisorPair struct {
	c, s  *gstack.Stack
	addrs []netip.Addr
}

const gvisorNIC = 1

func newGvisorStack(ep gstack.LinkEndpoint, addr netip.Addr) (*gstack.Stack, error) {
	s := gstack.New(gstack.Options{
		NetworkProtocols:   []gstack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol},
		TransportProtocols: []gstack.TransportProtocolFactory{tcp.NewProtocol},
	})
	if err := s.CreateNIC(gvisorNIC, ethernet.New(ep)); err != nil {
		s.Destroy()
		return nil, fmt.Errorf("gvisor: create NIC: %s", err)
	}
	if err := gvisorAddAddr(s, addr); err != nil {
		s.Destroy()
		return nil, err
	}
	subnet, err := tcpip.NewSubnet(tcpip.AddrFrom4([4]byte{10, 0, 0, 0}), tcpip.MaskFromBytes([]byte{255, 0, 0, 0}))
	if err != nil {
		s.Destroy()
		return nil, err
	}
	s.SetRouteTable([]tcpip.Route{{Destination: subnet, NIC: gvisorNIC}})
	return s, nil
}

func gvisorAddAddr(s *gstack.Stack, a netip.Addr) error {
	pa := tcpip.ProtocolAddress{
		Protocol:          ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpip.AddrFrom4(a.As4()), PrefixLen: 8},
	}
	if err := s.AddProtocolAddress(gvisorNIC, pa, gstack.AddressProperties{}); err != nil {
		return fmt.Errorf("gvisor: add address %v: %s", a, err)
	}
	return nil
}

func newGvisorPair(mtu int) (*gvisorPair, error) {
	macC := tcpip.LinkAddress([]byte{0x02, 0, 0, 0, 0, 0x0a})
	macS := tcpip.LinkAddress([]byte{0x02, 0, 0, 0, 0, 0x0b})
	// The pipe's MTU is the frame's; ethernet.Endpoint takes the header
	// off to give the IP MTU.
	ec, es := gpipe.New(macC, macS, uint32(mtu+header.EthernetMinimumSize))
	c, err := newGvisorStack(ec, clientAddr)
	if err != nil {
		return nil, err
	}
	s, err := newGvisorStack(es, serverAddr)
	if err != nil {
		c.Destroy()
		return nil, err
	}
	return &gvisorPair{c: c, s: s, addrs: []netip.Addr{clientAddr}}, nil
}

func fullAddr(ap netip.AddrPort) tcpip.FullAddress {
	return tcpip.FullAddress{Addr: tcpip.AddrFrom4(ap.Addr().As4()), Port: ap.Port()}
}

func (p *gvisorPair) listen(port uint16) (net.Listener, error) {
	return gonet.ListenTCP(p.s, fullAddr(netip.AddrPortFrom(serverAddr, port)), ipv4.ProtocolNumber)
}

func (p *gvisorPair) dial(laddr, raddr netip.AddrPort) (net.Conn, error) {
	var (
		c   *gonet.TCPConn
		err error
	)
	if laddr.IsValid() {
		c, err = gonet.DialTCPWithBind(context.Background(), p.c, fullAddr(laddr), fullAddr(raddr), ipv4.ProtocolNumber)
	} else {
		c, err = gonet.DialTCP(p.c, fullAddr(raddr), ipv4.ProtocolNumber)
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (p *gvisorPair) clientAddrs(n int) ([]netip.Addr, error) {
	for i := len(p.addrs); i < n; i++ {
		a := extraClientAddr(i)
		if err := gvisorAddAddr(p.c, a); err != nil {
			return nil, err
		}
		p.addrs = append(p.addrs, a)
	}
	return p.addrs[:n], nil
}

func (p *gvisorPair) retransmits() uint64 {
	return p.c.Stats().TCP.Retransmits.Value() + p.s.Stats().TCP.Retransmits.Value()
}

func (p *gvisorPair) close() {
	p.c.Destroy()
	p.s.Destroy()
}
