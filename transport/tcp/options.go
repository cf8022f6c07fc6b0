package tcp

import (
	"errors"
	"time"
)

// ErrWouldBlock is returned by the non-blocking calls (Conn.Read,
// Conn.Write, Listener.Accept) when they cannot make progress now; the
// socket layer waits on Readable or Writable and tries again.
var ErrWouldBlock = errors.New("tcp: operation would block")

// Options are per-connection settings, as socket options set them. The
// zero value takes the stack's defaults (its net.inet.tcp.* tunables).
// A listener's options are inherited by the connections it accepts.
type Options struct {
	// V6Only keeps a listener on the IPv6 wildcard (::) from accepting
	// IPv4 connections (IPV6_V6ONLY). Without it the listener is
	// dual-stack, as Go's "tcp" listeners are: IPv4 connections no IPv4
	// listener takes come to it.
	V6Only bool
	// NoDelay turns Nagle's algorithm off (TCP_NODELAY; RFC 9293 §3.7.4).
	NoDelay bool
	// ReuseAddr allows binding a local address and port in use by
	// connections in TIME_WAIT or by other ReuseAddr sockets that are not
	// listening on it (SO_REUSEADDR).
	ReuseAddr bool
	// LingerOn: Close waits up to Linger for unsent data to be
	// acknowledged; LingerOn with Linger 0 aborts with RST (SO_LINGER).
	// (The flags come first: they pack into one word.)
	LingerOn bool
	// KeepAlive turns keep-alive probes on (SO_KEEPALIVE; RFC 1122
	// §4.2.3.6). KeepAliveIdle, KeepAliveInterval and KeepAliveCount
	// override net.inet.tcp.keepidle, keepintvl and keepcnt when non-zero.
	KeepAlive         bool
	KeepAliveIdle     time.Duration
	KeepAliveInterval time.Duration
	KeepAliveCount    int
	// Linger is SO_LINGER's timeout, used when LingerOn.
	Linger time.Duration
	// RecvBuffer and SendBuffer bound the buffers (SO_RCVBUF, SO_SNDBUF);
	// 0 takes the defaults and lets the receive buffer auto-tune.
	RecvBuffer, SendBuffer int
	// UserTimeout bounds how long sent data may stay unacknowledged
	// before the connection is dropped (TCP_USER_TIMEOUT, RFC 5482); 0
	// leaves it to the retransmission limits.
	UserTimeout time.Duration
	// CongestionControl names the algorithm ("cubic", "reno"); empty takes
	// net.inet.tcp.cc_algorithm.
	CongestionControl string
	// MSS clamps the MSS sent and used (TCP_MAXSEG); 0: from the route.
	MSS int
}
