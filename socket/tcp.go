package socket

import (
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"ustack/transport/tcp"
)

// TCPConn is a TCP connection: a net.Conn with the methods and semantics
// of net.TCPConn. Read blocks until data, the end of the stream (io.EOF),
// an error, the read deadline or Close; Write blocks until all of b is in
// the send buffer (or an error, the write deadline or Close stops it,
// returning how much was queued). One Read and one Write proceed at a time;
// concurrent calls of the same direction wait their turn, as with net.
type TCPConn struct {
	base
	c *tcp.Conn
	// zone is the interface name that link-local addresses of the
	// connection carry ("fe80::1%eth0"), as net reports them; "" if none.
	zone string

	rmu sync.Mutex // held for the whole of a Read
	wmu sync.Mutex // held for the whole of a Write, so writes do not interleave

	rdShut event        // fired by CloseRead
	linger atomic.Int64 // SetLinger's seconds; < 0: the default
}

var _ net.Conn = (*TCPConn)(nil)

// newTCPConn wraps c, a connection of p's TCP.
func newTCPConn(c *tcp.Conn, network string, p Provider) *TCPConn {
	t := &TCPConn{c: c, zone: linkZone(p, c.LocalAddr(), c.RemoteAddr())}
	t.base.init(network, t.LocalAddr, true)
	t.linger.Store(-1)
	return t
}

// LocalAddr returns the local address, a *net.TCPAddr. A link-local one
// carries its interface as zone, as with net.
func (c *TCPConn) LocalAddr() net.Addr { return tcpAddr(c.zoned(c.c.LocalAddr())) }

// RemoteAddr returns the peer's address, a *net.TCPAddr. A link-local one
// carries the connection's interface as zone ("fe80::1%eth0"), as with
// net.
func (c *TCPConn) RemoteAddr() net.Addr { return tcpAddr(c.zoned(c.c.RemoteAddr())) }

// zoned gives ap the connection's zone if its address is link-local.
func (c *TCPConn) zoned(ap netip.AddrPort) netip.AddrPort {
	if c.zone == "" || !ap.Addr().IsLinkLocalUnicast() {
		return ap
	}
	return netip.AddrPortFrom(ap.Addr().WithZone(c.zone), ap.Port())
}

// AddrZoner is a Provider that knows the zone of its link-local
// addresses: the name of the interface that holds one (*stack.Stack is
// one). TCP connections of such a Provider report link-local addresses
// with that zone, as net does; others report them without.
type AddrZoner interface {
	AddrZone(a netip.Addr) string
}

// linkZone is the zone of a TCP connection's link-local addresses: that
// of its local address when it is link-local, as a link-local peer is
// reached only from a link-local address on the same link (RFC 4007 §6;
// the transports route such a pair by the source). "" when neither
// address is link-local or p cannot tell.
func linkZone(p Provider, local, remote netip.AddrPort) string {
	z, ok := p.(AddrZoner)
	if !ok || !local.Addr().IsLinkLocalUnicast() {
		return ""
	}
	return z.AddrZone(local.Addr())
}

// tcpAddr converts ap for net, keeping a nil interface for the zero
// AddrPort.
func tcpAddr(ap netip.AddrPort) net.Addr {
	if !ap.Addr().IsValid() {
		return nil
	}
	return net.TCPAddrFromAddrPort(ap)
}

// Read reads received data into b. It returns io.EOF itself (not wrapped)
// once the peer has closed its side and everything it sent has been read,
// or after CloseRead.
func (c *TCPConn) Read(b []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	over := false // the connection has ended (Done is closed)
	for {
		if err := c.readErr(noPending); err != nil {
			return 0, c.opErr("read", c.RemoteAddr(), err)
		}
		if c.readShut() {
			return 0, io.EOF
		}
		if len(b) == 0 {
			return 0, nil // as net: a zero-length read does not wait
		}
		n, err := c.c.Read(b)
		switch {
		case n > 0:
			return n, nil
		case err == io.EOF:
			return 0, io.EOF
		case err == tcp.ErrWouldBlock && over:
			// Nothing more can arrive on an ended connection.
			return 0, c.finalErr("read", io.EOF)
		case err != nil && err != tcp.ErrWouldBlock:
			return 0, c.opErr("read", c.RemoteAddr(), sysErr("read", err))
		}
		select {
		case <-c.c.Readable():
		case <-c.rd.wait():
		case <-c.done.wait():
		case <-c.rdShut.wait():
		case <-c.c.Done():
			over = true
		}
	}
}

// noPending is readErr's pending error for TCP: errors come from Read.
func noPending() error { return nil }

// finalErr is the error of an operation on a connection that has ended
// without its engine saying why: its pending error, or def.
func (c *TCPConn) finalErr(op string, def error) error {
	if err := c.c.Err(); err != nil {
		return c.opErr(op, c.RemoteAddr(), sysErr(op, err))
	}
	if def == io.EOF {
		return io.EOF
	}
	return c.opErr(op, c.RemoteAddr(), sysErr(op, def))
}

func (c *TCPConn) readShut() bool { return c.rdShut.fired() }

// Write queues all of b for sending, waiting for room in the send buffer
// as long as it needs to. On an error it returns how many bytes were
// queued. Writing after CloseWrite, or after the peer reset the
// connection, fails with syscall.EPIPE or the connection's error.
func (c *TCPConn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	n := 0
	over := false // the connection has ended (Done is closed)
	for {
		if err := c.writeErr(); err != nil {
			return n, c.opErr("write", c.RemoteAddr(), err)
		}
		if len(b) == 0 {
			return n, nil
		}
		k, err := c.c.Write(b)
		n += k
		b = b[k:]
		switch {
		case err != nil && err != tcp.ErrWouldBlock:
			return n, c.opErr("write", c.RemoteAddr(), sysErr("write", err))
		case k > 0:
			continue // try the rest at once; the engine says when it is full
		case over:
			// No room will free up on an ended connection.
			return n, c.finalErr("write", syscall.EPIPE)
		}
		select {
		case <-c.c.Writable():
		case <-c.wd.wait():
		case <-c.done.wait():
		case <-c.c.Done():
			over = true
		}
	}
}

// Close closes the connection: by default it sends what is queued and
// then a FIN in the background and returns at once. With SetLinger(0) it
// discards unsent data and resets the connection; with SetLinger(sec > 0)
// it waits up to sec seconds for the peer to acknowledge everything, FIN
// included. Blocked Reads and Writes return net.ErrClosed.
func (c *TCPConn) Close() error {
	sec := c.linger.Load()
	if !c.close(func() {
		if sec == 0 {
			c.c.Abort()
		} else {
			c.c.Close()
		}
	}) {
		return c.opErr("close", c.RemoteAddr(), net.ErrClosed)
	}
	if sec > 0 {
		c.lingerWait(time.Duration(sec) * time.Second)
	}
	return nil
}

// lingerWait waits up to d for the FIN to be acknowledged, as Linux's
// SO_LINGER close does: while the connection is in FIN-WAIT-1, CLOSING or
// LAST-ACK. Acknowledgments signal Writable.
func (c *TCPConn) lingerWait(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		switch c.c.Info().State {
		case tcp.StateFinWait1, tcp.StateClosing, tcp.StateLastAck:
		default:
			return
		}
		select {
		case <-c.c.Done():
			return
		case <-c.c.Writable():
		case <-t.C:
			return
		}
	}
}

// CloseWrite shuts down the sending side: once the queued data is sent
// the peer sees the end of the stream (a FIN). Reading goes on.
func (c *TCPConn) CloseWrite() error {
	if c.isClosed() {
		return c.opErr("close", c.RemoteAddr(), net.ErrClosed)
	}
	if err := c.c.CloseWrite(); err != nil {
		return c.opErr("close", c.RemoteAddr(), sysErr("shutdown", err))
	}
	return nil
}

// CloseRead shuts down the reading side: Reads, blocked or later, return
// io.EOF. Data the peer sends is still acknowledged and dropped.
func (c *TCPConn) CloseRead() error {
	if c.isClosed() {
		return c.opErr("close", c.RemoteAddr(), net.ErrClosed)
	}
	c.rdShut.fire()
	return nil
}

// set runs f unless the connection is closed.
func (c *TCPConn) set(f func()) error {
	if c.isClosed() {
		return c.setErr(net.ErrClosed)
	}
	f()
	return nil
}

// SetNoDelay turns Nagle's algorithm off (true, net's default) or on
// (TCP_NODELAY).
func (c *TCPConn) SetNoDelay(noDelay bool) error {
	return c.set(func() { c.c.SetNoDelay(noDelay) })
}

// SetKeepAlive turns keep-alive probes on or off (SO_KEEPALIVE).
func (c *TCPConn) SetKeepAlive(keepalive bool) error {
	return c.set(func() { c.c.SetKeepAlive(keepalive) })
}

// SetKeepAlivePeriod sets how long the connection stays idle before the
// first keep-alive probe. As with net, 0 means the default (15 s) and a
// negative period leaves the setting as it is.
func (c *TCPConn) SetKeepAlivePeriod(d time.Duration) error {
	if d == 0 {
		d = defaultKeepAlive
	}
	return c.set(func() {
		if d > 0 {
			c.c.SetKeepAlivePeriod(d)
		}
	})
}

// SetLinger sets what Close does with unsent data, as net.TCPConn's: sec
// < 0 (the default) sends it in the background; sec == 0 discards it and
// resets the connection; sec > 0 sends it, and Close waits up to sec
// seconds for the peer to acknowledge it.
func (c *TCPConn) SetLinger(sec int) error {
	return c.set(func() {
		c.linger.Store(int64(max(sec, -1)))
		c.c.SetLinger(sec >= 0, time.Duration(max(sec, 0))*time.Second)
	})
}

// SetReadBuffer sets the receive buffer size (SO_RCVBUF); it turns
// receive-buffer auto-tuning off.
func (c *TCPConn) SetReadBuffer(bytes int) error {
	if bytes < 0 {
		return c.setErr(sysErr("setsockopt", syscall.EINVAL))
	}
	return c.set(func() { c.c.SetRecvBuffer(bytes) })
}

// SetWriteBuffer sets the send buffer size (SO_SNDBUF).
func (c *TCPConn) SetWriteBuffer(bytes int) error {
	if bytes < 0 {
		return c.setErr(sysErr("setsockopt", syscall.EINVAL))
	}
	return c.set(func() { c.c.SetSendBuffer(bytes) })
}

// SetUserTimeout bounds how long sent data may stay unacknowledged before
// the connection is dropped (TCP_USER_TIMEOUT, RFC 5482); 0 restores the
// default.
func (c *TCPConn) SetUserTimeout(d time.Duration) error {
	if d < 0 {
		return c.setErr(sysErr("setsockopt", syscall.EINVAL))
	}
	return c.set(func() { c.c.SetUserTimeout(d) })
}

// SetCongestionControl chooses the congestion control algorithm by name
// ("cubic", "reno"), as TCP_CONGESTION.
func (c *TCPConn) SetCongestionControl(name string) error {
	if c.isClosed() {
		return c.setErr(net.ErrClosed)
	}
	if err := c.c.SetCongestionControl(name); err != nil {
		return c.setErr(sysErr("setsockopt", err))
	}
	return nil
}

// Info returns the connection's state and counters (like Linux TCP_INFO).
func (c *TCPConn) Info() tcp.Info { return c.c.Info() }
