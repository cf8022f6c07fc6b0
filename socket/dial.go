package socket

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"ustack/transport/tcp"
)

// defaultKeepAlive is the keep-alive idle time and interval net uses when
// none is given (net.Dialer.KeepAlive, net.ListenConfig.KeepAlive).
const defaultKeepAlive = 15 * time.Second

// defaultKeepAliveCount is the number of unanswered probes before the
// connection is dropped, net's default on Linux.
const defaultKeepAliveCount = 9

// errNoTCP is returned when the Provider has no TCP.
var errNoTCP error = syscall.EPROTONOSUPPORT

// defaultOptions are a new socket's options: keep-alive as net sets it
// (ka 0: the default period; ka < 0: off), and no Nagle: Go's net turns
// TCP_NODELAY on for every TCP connection.
func defaultOptions(ka time.Duration) tcp.Options {
	o := tcp.Options{NoDelay: true}
	if ka >= 0 {
		if ka == 0 {
			ka = defaultKeepAlive
		}
		o.KeepAlive = true
		o.KeepAliveIdle = ka
		o.KeepAliveInterval = ka
		o.KeepAliveCount = defaultKeepAliveCount
	}
	return o
}

// Dialer holds the options for connecting to a TCP address, as
// net.Dialer does. Stack must be set; every other field's zero value takes
// net's default.
type Dialer struct {
	// Stack is the stack that dials.
	Stack Provider
	// Timeout bounds the whole dial, handshake included; 0: no bound
	// beyond the stack's own (its SYN retransmission limit).
	Timeout time.Duration
	// Deadline is an absolute time past which the dial fails; the zero
	// time: none. With Timeout, the earlier one wins.
	Deadline time.Time
	// LocalAddr is the local address to dial from, a *net.TCPAddr; nil
	// (or port 0) lets the stack choose the source address from the route
	// (and an ephemeral port).
	LocalAddr net.Addr
	// KeepAlive is the keep-alive period of the connection: 0 means net's
	// default (15 s), negative turns keep-alive off.
	KeepAlive time.Duration
}

// Dial connects to the address on the named network ("tcp", "tcp4",
// "tcp6"); address is "host:port" with a numeric host, "localhost", or an
// empty host for the local system. It returns a *TCPConn.
func Dial(p Provider, network, address string) (net.Conn, error) {
	d := Dialer{Stack: p}
	return d.Dial(network, address)
}

// DialTCP connects from laddr (the zero AddrPort: chosen by the stack) to
// raddr, waiting as long as the stack's handshake does.
func DialTCP(p Provider, laddr, raddr netip.AddrPort) (*TCPConn, error) {
	d := Dialer{Stack: p}
	if laddr.Addr().IsValid() || laddr.Port() != 0 {
		d.LocalAddr = net.TCPAddrFromAddrPort(laddr)
	}
	return d.dial(context.Background(), "tcp", raddr)
}

// Dial connects to address as DialContext does, with no context.
func (d *Dialer) Dial(network, address string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, address)
}

// DialContext connects to the address on the named network, with the
// handshake bounded by ctx, Timeout and Deadline. Cancelling ctx, or any
// of them passing, aborts the handshake: the error then matches
// context.Canceled, or os.ErrDeadlineExceeded and
// context.DeadlineExceeded ("i/o timeout", as net says). Once connected,
// ctx no longer matters. It returns a *TCPConn.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, &net.OpError{Op: "dial", Net: network, Err: net.UnknownNetworkError(network)}
	}
	ra, err := parseAddr(network, address)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	if ra.Addr().IsUnspecified() {
		// As net: dialling the unspecified address reaches this host.
		if ra.Addr().Is4() {
			ra = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), ra.Port())
		} else {
			ra = netip.AddrPortFrom(netip.IPv6Loopback(), ra.Port())
		}
	}
	c, err := d.dial(ctx, network, ra)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// deadline is the earliest of Timeout from now, Deadline and ctx's
// deadline, or the zero time.
func (d *Dialer) deadline(ctx context.Context, now time.Time) time.Time {
	var t time.Time
	earliest := func(u time.Time) {
		if !u.IsZero() && (t.IsZero() || u.Before(t)) {
			t = u
		}
	}
	if d.Timeout != 0 {
		earliest(now.Add(d.Timeout))
	}
	if cd, ok := ctx.Deadline(); ok {
		earliest(cd)
	}
	earliest(d.Deadline)
	return t
}

func (d *Dialer) dial(ctx context.Context, network string, ra netip.AddrPort) (*TCPConn, error) {
	var la netip.AddrPort
	var src net.Addr
	if d.LocalAddr != nil {
		ta, ok := d.LocalAddr.(*net.TCPAddr)
		if !ok {
			return nil, &net.OpError{Op: "dial", Net: network, Source: d.LocalAddr, Addr: net.TCPAddrFromAddrPort(ra),
				Err: &net.AddrError{Err: "mismatched local address type", Addr: d.LocalAddr.String()}}
		}
		la, src = ta.AddrPort(), ta
		if a := la.Addr(); a.IsValid() {
			la = netip.AddrPortFrom(a.Unmap(), la.Port())
		}
	}
	fail := func(err error) (*TCPConn, error) {
		return nil, &net.OpError{Op: "dial", Net: network, Source: src, Addr: net.TCPAddrFromAddrPort(ra), Err: err}
	}
	if d.Stack == nil || d.Stack.TCP() == nil {
		return fail(sysErr("socket", errNoTCP))
	}
	if dl := d.deadline(ctx, time.Now()); !dl.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl)
		defer cancel()
	}
	if err := ctx.Err(); err != nil {
		return fail(mapCtxErr(err))
	}
	c, err := d.Stack.TCP().Dial(la, ra, defaultOptions(d.KeepAlive))
	if err != nil {
		call := "connect"
		if errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, syscall.EADDRNOTAVAIL) {
			call = "bind"
		}
		return fail(sysErr(call, err))
	}
	// RFC 9293 §3.5: the handshake runs in the engine; wait for it to
	// complete, fail, or be given up on.
	for !c.Connected() {
		if err := c.Err(); err != nil {
			c.Abort()
			return fail(sysErr("connect", err))
		}
		select {
		case <-c.Writable():
		case <-c.Readable():
		case <-c.Done():
			if !c.Connected() {
				err := c.Err()
				if err == nil {
					err = syscall.ECONNRESET
				}
				return fail(sysErr("connect", err))
			}
		case <-ctx.Done():
			c.Abort()
			return fail(mapCtxErr(ctx.Err()))
		}
	}
	// Nothing waits on the engine's channels any more: let an idle
	// connection hold none (Read and Write make them again).
	c.ReleaseWaiters()
	return newTCPConn(c, network, d.Stack), nil
}

// mapCtxErr turns a context's error into net's dial errors.
func mapCtxErr(err error) error {
	switch err {
	case context.Canceled:
		return errCanceled
	case context.DeadlineExceeded:
		return errDialTimeout
	}
	return err
}

// errDialTimeout is a dial's "i/o timeout": a net.Error with Timeout true
// that matches os.ErrDeadlineExceeded and context.DeadlineExceeded.
var errDialTimeout error = dialTimeoutError{}

type dialTimeoutError struct{}

func (dialTimeoutError) Error() string   { return "i/o timeout" }
func (dialTimeoutError) Timeout() bool   { return true }
func (dialTimeoutError) Temporary() bool { return true }
func (dialTimeoutError) Is(target error) bool {
	return target == os.ErrDeadlineExceeded || target == context.DeadlineExceeded
}

// errCanceled is a dial's "operation was canceled", matching
// context.Canceled, as net's.
var errCanceled error = canceledError{}

type canceledError struct{}

func (canceledError) Error() string        { return "operation was canceled" }
func (canceledError) Is(target error) bool { return target == context.Canceled }
