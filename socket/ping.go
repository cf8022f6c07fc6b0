package socket

import (
	"net"
	"net/netip"
	"syscall"

	"ustack/transport/icmp"
)

// pingNetwork and ping6Network name ping sockets in errors.
const (
	pingNetwork  = "ip4:icmp"
	ping6Network = "ip6:ipv6-icmp"
)

// ICMP6Provider is a Provider with ICMPv6 echo endpoints (a
// *stack.Stack is one).
type ICMP6Provider interface {
	ICMP6() *icmp.Protocol
}

// PingConn is an ICMP echo socket, a net.PacketConn like the "udp4" ping
// sockets of golang.org/x/net/icmp: WriteTo takes an ICMP echo request
// (whose identifier the stack replaces with the socket's and whose checksum
// it computes), ReadFrom returns the echo replies with that identifier as
// whole ICMP messages. An ICMP error about a request (unreachable, time
// exceeded) fails the next ReadFrom with an *icmp.Error inside the
// *net.OpError: errors.As gives the details, errors.Is the errno.
type PingConn struct {
	base
	ep *icmp.Endpoint
}

var _ net.PacketConn = (*PingConn)(nil)

// ListenPing opens a ping socket on laddr (invalid or unspecified: every
// local address) with an identifier of its own. An IPv6 laddr (:: for
// every address) opens an ICMPv6 echo socket, which needs p to be an
// ICMP6Provider; otherwise the socket is ICMPv4.
func ListenPing(p Provider, laddr netip.Addr) (*PingConn, error) {
	proto, network := p.ICMP(), pingNetwork
	if laddr.Is6() && !laddr.Is4In6() {
		network = ping6Network
		p6, ok := p.(ICMP6Provider)
		if !ok {
			return nil, &net.OpError{Op: "listen", Net: network, Addr: ipAddr(laddr), Err: sysErr("socket", syscall.EAFNOSUPPORT)}
		}
		proto = p6.ICMP6()
	}
	ep, err := proto.Open(laddr, 0)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Addr: ipAddr(laddr), Err: sysErr("bind", err)}
	}
	c := &PingConn{ep: ep}
	c.base.init(network, c.LocalAddr, false)
	return c, nil
}

// ID is the echo identifier of the socket's requests.
func (c *PingConn) ID() uint16 { return c.ep.ID() }

// LocalAddr returns the local address, a *net.IPAddr.
func (c *PingConn) LocalAddr() net.Addr { return ipAddr(c.ep.LocalAddr()) }

// ReadFrom reads an echo reply into b (truncating it if b is short) and
// returns its sender, a *net.IPAddr.
func (c *PingConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		if err := c.readErr(c.ep.Err); err != nil {
			return 0, nil, c.opErr("read", nil, sysErr("recvfrom", err))
		}
		if pkt, from, ok := c.ep.Recv(); ok {
			n := pkt.CopyTo(b)
			pkt.Release()
			return n, ipAddr(from), nil
		}
		c.waitReadable(c.ep.Readable())
	}
}

// WriteTo sends the echo request b to addr, a *net.IPAddr or *net.UDPAddr
// (its port is ignored).
func (c *PingConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	var dst netip.Addr
	switch a := addr.(type) {
	case *net.IPAddr:
		if a != nil {
			dst, _ = netip.AddrFromSlice(a.IP)
			dst = dst.WithZone(a.Zone)
		}
	case *net.UDPAddr:
		if a != nil {
			dst, _ = netip.AddrFromSlice(a.IP)
			dst = dst.WithZone(a.Zone)
		}
	default:
		return 0, c.opErr("write", addr, errInvalid)
	}
	if !dst.IsValid() {
		return 0, c.opErr("write", addr, errMissingAddress)
	}
	err := c.writeErr()
	if err == nil {
		var n int
		if n, err = c.ep.WriteTo(b, dst.Unmap()); err == nil {
			return n, nil
		}
	}
	return 0, c.opErr("write", addr, sysErr("sendto", err))
}

// Close closes the socket and wakes blocked reads.
func (c *PingConn) Close() error {
	if !c.close(c.ep.Close) {
		return c.opErr("close", nil, net.ErrClosed)
	}
	return nil
}

// SetTTL sets the TTL of sent requests (1..255; 0 restores the default),
// for traceroute.
func (c *PingConn) SetTTL(ttl int) error {
	if c.isClosed() {
		return c.setErr(net.ErrClosed)
	}
	if ttl < 0 || ttl > 255 {
		return c.setErr(sysErr("setsockopt", errInvalid))
	}
	c.ep.SetTTL(uint8(ttl))
	return nil
}

// SetBroadcast allows or forbids echo requests to broadcast addresses
// (forbidden by default, as on Linux).
func (c *PingConn) SetBroadcast(on bool) error {
	if c.isClosed() {
		return c.setErr(net.ErrClosed)
	}
	c.ep.SetBroadcast(on)
	return nil
}
