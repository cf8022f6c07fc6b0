package socket

import (
	"net"
	"os"
	"sync"
	"time"
)

// base is what every socket of this package shares: its deadlines, its
// closed state, and the names that go into its errors. Sockets embed it.
type base struct {
	network string          // "udp", "ip4:icmp", ... for errors
	local   func() net.Addr // the socket's local address, for errors
	rd, wd  *deadline
	done    chan struct{} // closed by close
	once    sync.Once
}

func newBase(network string, local func() net.Addr) base {
	return base{network: network, local: local, rd: newDeadline(true), wd: newDeadline(false), done: make(chan struct{})}
}

// newStreamBase is newBase for a socket whose writes block (TCP): its
// write deadline has a timer, so a blocked write wakes when it passes.
func newStreamBase(network string, local func() net.Addr) base {
	return base{network: network, local: local, rd: newDeadline(true), wd: newDeadline(true), done: make(chan struct{})}
}

func (c *base) isClosed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// opErr wraps err as net does: in a *net.OpError naming the operation, the
// network and both addresses.
func (c *base) opErr(op string, addr net.Addr, err error) error {
	return &net.OpError{Op: op, Net: c.network, Source: c.local(), Addr: addr, Err: err}
}

func (c *base) setErr(err error) error {
	return &net.OpError{Op: "set", Net: c.network, Addr: c.local(), Err: err}
}

// readErr is the error a read returns before looking at the queue: closed,
// deadline passed, or the endpoint's pending error.
func (c *base) readErr(pending func() error) error {
	switch {
	case c.isClosed():
		return net.ErrClosed
	case c.rd.passed():
		return os.ErrDeadlineExceeded
	}
	return pending()
}

// writeErr is the error a write returns before sending: closed or deadline
// passed.
func (c *base) writeErr() error {
	switch {
	case c.isClosed():
		return net.ErrClosed
	case c.wd.passed():
		return os.ErrDeadlineExceeded
	}
	return nil
}

// waitReadable blocks until the endpoint signals, the read deadline passes
// or the socket closes.
func (c *base) waitReadable(readable <-chan struct{}) {
	select {
	case <-readable:
	case <-c.rd.wait():
	case <-c.done:
	}
}

// waitWritable blocks until the endpoint signals, the write deadline
// passes or the socket closes.
func (c *base) waitWritable(writable <-chan struct{}) {
	select {
	case <-writable:
	case <-c.wd.wait():
	case <-c.done:
	}
}

// close runs release once, wakes blocked readers and writers, and reports
// whether this call was the one that closed.
func (c *base) close(release func()) bool {
	closed := false
	c.once.Do(func() {
		close(c.done)
		release()
		c.rd.stop()
		c.wd.stop()
		closed = true
	})
	return closed
}

// SetDeadline sets the read and write deadlines.
func (c *base) SetDeadline(t time.Time) error {
	if c.isClosed() {
		return c.setErr(net.ErrClosed)
	}
	c.rd.set(t)
	c.wd.set(t)
	return nil
}

// SetReadDeadline sets the read deadline; a read blocked now sees the new
// one (and fails at once if it is in the past).
func (c *base) SetReadDeadline(t time.Time) error {
	if c.isClosed() {
		return c.setErr(net.ErrClosed)
	}
	c.rd.set(t)
	return nil
}

// SetWriteDeadline sets the write deadline. Datagram writes never block, so
// there it only makes writes fail once it has passed; a stream write
// blocked now sees the new one.
func (c *base) SetWriteDeadline(t time.Time) error {
	if c.isClosed() {
		return c.setErr(net.ErrClosed)
	}
	c.wd.set(t)
	return nil
}
