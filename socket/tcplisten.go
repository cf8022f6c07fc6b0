package socket

import (
	"net"
	"net/netip"
	"time"

	"ustack/transport/tcp"
)

// listenBacklog is the accept queue length of the listeners made here, as
// Go's net asks of Linux (net.core.somaxconn's default since 5.4).
const listenBacklog = 4096

// TCPListener is a listening TCP socket: a net.Listener like
// net.TCPListener. Accept waits for a connection whose handshake has
// completed; SetDeadline bounds that wait.
type TCPListener struct {
	b       base // b.rd is the accept deadline
	l       *tcp.Listener
	network string
	p       Provider // for the zones of accepted connections
}

var _ net.Listener = (*TCPListener)(nil)

// Listen announces on the local address for network "tcp", "tcp4" or
// "tcp6"; address is "host:port" with a numeric host (empty: every local
// address; port 0 or empty: an ephemeral port). It returns a
// *TCPListener. As with net.Listen, accepted connections send keep-alive
// probes after 15 s of idleness.
func Listen(p Provider, network, address string) (net.Listener, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, &net.OpError{Op: "listen", Net: network, Err: net.UnknownNetworkError(network)}
	}
	la, err := parseListenAddr(network, address)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	l, err := listenTCP(p, network, la, defaultOptions(0))
	if err != nil {
		return nil, err
	}
	return l, nil
}

// ListenTCP announces on laddr (an invalid or unspecified address: every
// local address; port 0: an ephemeral port), with net.Listen's defaults.
func ListenTCP(p Provider, laddr netip.AddrPort) (*TCPListener, error) {
	return listenTCP(p, "tcp", laddr, defaultOptions(0))
}

func listenTCP(p Provider, network string, la netip.AddrPort, o tcp.Options) (*TCPListener, error) {
	if !la.Addr().IsValid() {
		la = netip.AddrPortFrom(netip.IPv4Unspecified(), la.Port())
	}
	proto := p.TCP()
	if proto == nil {
		return nil, &net.OpError{Op: "listen", Net: network, Addr: net.TCPAddrFromAddrPort(la), Err: sysErr("socket", errNoTCP)}
	}
	l, err := proto.Listen(la, listenBacklog, o)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Addr: net.TCPAddrFromAddrPort(la), Err: sysErr("bind", err)}
	}
	ln := &TCPListener{l: l, network: network, p: p}
	ln.b.init(network, ln.Addr, false)
	return ln, nil
}

// Addr returns the listening address, a *net.TCPAddr.
func (l *TCPListener) Addr() net.Addr { return net.TCPAddrFromAddrPort(l.l.Addr()) }

// opErr is a listener's error: net names only the local address, in Addr.
func (l *TCPListener) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: l.network, Addr: l.Addr(), Err: err}
}

// AcceptTCP waits for the next connection and returns it.
func (l *TCPListener) AcceptTCP() (*TCPConn, error) {
	for {
		if err := l.b.readErr(noPending); err != nil {
			return nil, l.opErr("accept", err)
		}
		c, err := l.l.Accept()
		switch {
		case err == nil:
			return newTCPConn(c, l.network, l.p), nil
		case err != tcp.ErrWouldBlock:
			return nil, l.opErr("accept", sysErr("accept", err))
		}
		l.b.waitReadable(l.l.Readable())
	}
}

// Accept implements net.Listener: it returns a *TCPConn.
func (l *TCPListener) Accept() (net.Conn, error) {
	c, err := l.AcceptTCP()
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Close stops listening; a blocked Accept returns net.ErrClosed, and
// connections not yet accepted are reset.
func (l *TCPListener) Close() error {
	if !l.b.close(l.l.Close) {
		return l.opErr("close", net.ErrClosed)
	}
	return nil
}

// SetDeadline sets the deadline of Accept; the zero time means none. An
// Accept blocked now sees the new deadline.
func (l *TCPListener) SetDeadline(t time.Time) error {
	if l.b.isClosed() {
		return l.opErr("set", net.ErrClosed)
	}
	l.b.rd.set(t)
	return nil
}
