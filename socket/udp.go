package socket

import (
	"net"
	"net/netip"

	"ustack/transport/udp"
)

// UDPConn is a UDP socket: a net.PacketConn and, once connected (DialUDP),
// a net.Conn. It mirrors net.UDPConn. Like net's, a new socket may send
// to broadcast addresses (Go sets SO_BROADCAST on every UDP socket).
type UDPConn struct {
	base
	ep        *udp.Endpoint
	connected bool
}

var (
	_ net.PacketConn = (*UDPConn)(nil)
	_ net.Conn       = (*UDPConn)(nil)
)

// ListenPacket announces on the local address for network "udp", "udp4" or
// "udp6"; address is "host:port" with a numeric host (empty: every local
// address; port 0 or empty: an ephemeral port). It returns a *UDPConn.
func ListenPacket(p Provider, network, address string) (net.PacketConn, error) {
	switch network {
	case "udp", "udp4", "udp6":
	default:
		return nil, &net.OpError{Op: "listen", Net: network, Err: net.UnknownNetworkError(network)}
	}
	la, err := parseListenAddr(network, address)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	c, err := listen(p, network, la)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ListenUDP announces on laddr (an invalid or unspecified address: every
// local address; port 0: an ephemeral port).
func ListenUDP(p Provider, laddr netip.AddrPort) (*UDPConn, error) {
	return listen(p, "udp", laddr)
}

func listen(p Provider, network string, la netip.AddrPort) (*UDPConn, error) {
	ep, err := p.UDP().Bind(la, udp.Options{Broadcast: true})
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Addr: net.UDPAddrFromAddrPort(la), Err: sysErr("bind", err)}
	}
	return newUDPConn(ep, network, false), nil
}

// DialUDP opens a UDP socket bound to laddr (as for ListenUDP) and connected
// to raddr: it sends to raddr only and receives from raddr only. Its local
// address is the source address of the route to raddr.
func DialUDP(p Provider, laddr, raddr netip.AddrPort) (*UDPConn, error) {
	const network = "udp"
	src := udpAddr(laddr)
	if laddr.Addr().IsValid() || laddr.Port() != 0 {
		src = net.UDPAddrFromAddrPort(laddr)
	}
	if !raddr.Addr().IsValid() {
		return nil, &net.OpError{Op: "dial", Net: network, Source: src, Err: errMissingAddress}
	}
	dst := net.UDPAddrFromAddrPort(raddr)
	ep, err := p.UDP().Bind(laddr, udp.Options{Broadcast: true})
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Source: src, Addr: dst, Err: sysErr("bind", err)}
	}
	if err := ep.Connect(raddr); err != nil {
		ep.Close()
		return nil, &net.OpError{Op: "dial", Net: network, Source: src, Addr: dst, Err: sysErr("connect", err)}
	}
	return newUDPConn(ep, network, true), nil
}

func newUDPConn(ep *udp.Endpoint, network string, connected bool) *UDPConn {
	c := &UDPConn{ep: ep, connected: connected}
	c.base.init(network, c.LocalAddr, false)
	return c
}

// LocalAddr returns the local address, a *net.UDPAddr.
func (c *UDPConn) LocalAddr() net.Addr { return net.UDPAddrFromAddrPort(c.ep.LocalAddr()) }

// RemoteAddr returns the connected peer, a *net.UDPAddr, or nil.
func (c *UDPConn) RemoteAddr() net.Addr {
	if !c.connected {
		return nil
	}
	return udpAddr(c.ep.RemoteAddr())
}

// recv waits for a datagram and copies it into b, truncating it if b is
// short (the rest is discarded, as on Linux). A pending error of a
// connected socket (an ICMP error about an earlier datagram) is reported
// first, then queued data.
func (c *UDPConn) recv(b []byte) (int, netip.AddrPort, error) {
	for {
		if err := c.readErr(c.ep.Err); err != nil {
			return 0, netip.AddrPort{}, err
		}
		if pkt, from, ok := c.ep.Recv(); ok {
			n := pkt.CopyTo(b)
			pkt.Release()
			return n, from, nil
		}
		c.waitReadable(c.ep.Readable())
	}
}

// ReadFromUDPAddrPort reads a datagram into b and returns its size (at
// most len(b)) and sender.
func (c *UDPConn) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	n, from, err := c.recv(b)
	if err != nil {
		return n, from, c.opErr("read", c.RemoteAddr(), sysErr("recvfrom", err))
	}
	return n, from, nil
}

// ReadFromUDP is ReadFrom returning a *net.UDPAddr.
func (c *UDPConn) ReadFromUDP(b []byte) (int, *net.UDPAddr, error) {
	n, from, err := c.ReadFromUDPAddrPort(b)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(from), nil
}

// ReadFrom implements net.PacketConn; the address is a *net.UDPAddr.
func (c *UDPConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := c.ReadFromUDPAddrPort(b)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(from), nil
}

// Read implements net.Conn: it reads one datagram.
func (c *UDPConn) Read(b []byte) (int, error) {
	n, _, err := c.recv(b)
	if err != nil {
		return n, c.opErr("read", c.RemoteAddr(), sysErr("read", err))
	}
	return n, nil
}

// send writes one datagram to to (the zero AddrPort: the peer).
func (c *UDPConn) send(b []byte, to netip.AddrPort, call string) (int, error) {
	if err := c.writeErr(); err != nil {
		return 0, err
	}
	n, err := c.ep.WriteTo(b, to)
	return n, sysErr(call, err)
}

// Write implements net.Conn: it sends b to the connected peer.
func (c *UDPConn) Write(b []byte) (int, error) {
	n, err := c.send(b, netip.AddrPort{}, "write")
	if err != nil {
		return n, c.opErr("write", c.RemoteAddr(), err)
	}
	return n, nil
}

// WriteToUDPAddrPort sends b to addr. A connected socket refuses with
// net.ErrWriteToConnected.
func (c *UDPConn) WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	var err error
	switch {
	case c.connected:
		err = net.ErrWriteToConnected
	case !addr.Addr().IsValid():
		err = errMissingAddress
	default:
		var n int
		if n, err = c.send(b, addr, "sendto"); err == nil {
			return n, nil
		}
	}
	return 0, c.opErr("write", udpAddr(addr), err)
}

// WriteToUDP is WriteTo taking a *net.UDPAddr.
func (c *UDPConn) WriteToUDP(b []byte, addr *net.UDPAddr) (int, error) {
	if addr == nil {
		return 0, c.opErr("write", nil, errMissingAddress)
	}
	return c.WriteToUDPAddrPort(b, addr.AddrPort())
}

// WriteTo implements net.PacketConn; addr must be a *net.UDPAddr.
func (c *UDPConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	a, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, c.opErr("write", addr, errInvalid)
	}
	return c.WriteToUDP(b, a)
}

// Close closes the socket and wakes blocked reads, which return
// net.ErrClosed.
func (c *UDPConn) Close() error {
	if !c.close(c.ep.Close) {
		return c.opErr("close", c.RemoteAddr(), net.ErrClosed)
	}
	return nil
}

// SetReadBuffer bounds the receive queue to bytes of payload.
func (c *UDPConn) SetReadBuffer(bytes int) error {
	if c.isClosed() {
		return c.setErr(net.ErrClosed)
	}
	c.ep.SetRecvBuffer(bytes)
	return nil
}

// SetWriteBuffer is accepted and ignored: UDP sockets have no send queue.
func (c *UDPConn) SetWriteBuffer(bytes int) error {
	if c.isClosed() {
		return c.setErr(net.ErrClosed)
	}
	return nil
}

// JoinGroup joins the multicast group on the interface with the index
// (0: every interface), as golang.org/x/net/ipv4's PacketConn.JoinGroup
// does on a host socket. Closing the socket leaves its groups.
func (c *UDPConn) JoinGroup(ifIndex int, group netip.Addr) error {
	if c.isClosed() {
		return c.setErr(net.ErrClosed)
	}
	if err := c.ep.JoinGroup(ifIndex, group); err != nil {
		return c.setErr(sysErr("setsockopt", err))
	}
	return nil
}

// LeaveGroup leaves a group JoinGroup joined.
func (c *UDPConn) LeaveGroup(ifIndex int, group netip.Addr) error {
	if c.isClosed() {
		return c.setErr(net.ErrClosed)
	}
	if err := c.ep.LeaveGroup(ifIndex, group); err != nil {
		return c.setErr(sysErr("setsockopt", err))
	}
	return nil
}

// SetTTL sets the TTL of sent datagrams (1..255; 0 restores the default).
func (c *UDPConn) SetTTL(ttl int) error {
	if c.isClosed() {
		return c.setErr(net.ErrClosed)
	}
	if ttl < 0 || ttl > 255 {
		return c.setErr(sysErr("setsockopt", errInvalid))
	}
	c.ep.SetTTL(uint8(ttl))
	return nil
}
