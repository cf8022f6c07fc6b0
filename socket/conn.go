package socket

import (
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// base is what every socket of this package shares: its deadlines, its
// closed state, and the names that go into its errors. Sockets embed it.
type base struct {
	network string          // "udp", "ip4:icmp", ... for errors
	local   func() net.Addr // the socket's local address, for errors
	rd, wd  lazyDeadline
	done    event // fired by close
	once    sync.Once
}

// init readies the base of a socket. stream is for a socket whose writes
// block (TCP): its write deadline has a timer, so a blocked write wakes
// when it passes. The base must not move afterwards.
func (c *base) init(network string, local func() net.Addr, stream bool) {
	c.network, c.local = network, local
	c.wd.noTimer = !stream
}

func (c *base) isClosed() bool { return c.done.fired() }

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
	case <-c.done.wait():
	}
}

// waitWritable blocks until the endpoint signals, the write deadline
// passes or the socket closes.
func (c *base) waitWritable(writable <-chan struct{}) {
	select {
	case <-writable:
	case <-c.wd.wait():
	case <-c.done.wait():
	}
}

// close runs release once, wakes blocked readers and writers, and reports
// whether this call was the one that closed.
func (c *base) close(release func()) bool {
	closed := false
	c.once.Do(func() {
		c.done.fire()
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

// event is a condition that happens once (a socket closed, a read side
// shut down), for waiters to select on. Its channel is made only when
// someone waits, so an idle socket holds none.
type event struct {
	mu sync.Mutex
	ch chan struct{} // nil until wait needs it; closed by fire
	on atomic.Bool
}

// fire makes the event happen and wakes its waiters; it reports whether
// this call did.
func (e *event) fire() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.on.Load() {
		return false
	}
	e.on.Store(true)
	if e.ch != nil {
		close(e.ch)
	}
	return true
}

// fired reports whether the event has happened.
func (e *event) fired() bool { return e.on.Load() }

// wait returns a channel that is closed when the event happens.
func (e *event) wait() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ch == nil {
		if e.on.Load() {
			return closedChan
		}
		e.ch = make(chan struct{})
	}
	return e.ch
}
