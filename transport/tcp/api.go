package tcp

import (
	"io"
	"net"
	"net/netip"
	"syscall"
	"time"

	"ustack/proto"
)

// The API the socket layer uses: addresses, readiness channels, Read,
// Write, the closes and Abort (RFC 9293 §3.10 user calls). The engine
// behind them is in conn.go and the files it lists.

// LocalAddr is the connection's local address and port.
func (c *Conn) LocalAddr() netip.AddrPort { return c.tid.local }

// RemoteAddr is the peer's address and port.
func (c *Conn) RemoteAddr() netip.AddrPort { return c.tid.remote }

// id is the connection's 4-tuple.
func (c *Conn) id() connID { return c.tid }

// state is the connection's state.
func (c *Conn) state() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st
}

// Readable returns a channel with a buffer of one that receives a value
// when data, the peer's FIN or an error arrives. It is never closed.
func (c *Conn) Readable() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.readable.get()
}

// Writable returns a channel with a buffer of one that receives a value
// when send-buffer space frees up, when the connection is established and
// on an error. It is never closed.
func (c *Conn) Writable() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writable.get()
}

// Done is closed when the connection reaches CLOSED or TIME-WAIT.
func (c *Conn) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		if c.doneClosed {
			return closedChan
		}
		c.done = make(chan struct{})
	}
	return c.done
}

// ReleaseWaiters drops the channels Readable, Writable and Done have
// made, keeping any signal they hold; the next call makes them again. It
// lets a connection that nobody waits on hold none, after a dialer has
// waited for the handshake. The caller must be the only user of those
// channels: no goroutine waits on one or keeps one.
func (c *Conn) ReleaseWaiters() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.readable.release()
	c.writable.release()
	c.done = nil // Done makes a new one, or returns closedChan
}

// Connected reports whether the handshake completed.
func (c *Conn) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connected
}

// Err returns and clears the pending error (SO_ERROR): the error that
// ended the connection (once), or an ICMP error that has not ended it.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hardErr != nil && !c.errTaken {
		c.errTaken = true
		return c.hardErr
	}
	err := c.softErr
	c.softErr = nil
	return err
}

// Read copies received data into b without blocking. It returns
// ErrWouldBlock when nothing is queued, io.EOF once the peer's FIN has
// been reached, the error that ended the connection (ECONNRESET,
// ETIMEDOUT, ECONNREFUSED, ...) as a syscall.Errno, and net.ErrClosed
// after Close.
func (c *Conn) Read(b []byte) (int, error) {
	c.mu.Lock()
	defer c.unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	if c.recvq.n > 0 {
		if len(b) == 0 {
			return 0, nil
		}
		n := c.recvq.read(b)
		c.afterRead(n)
		return n, nil
	}
	if c.hardErr != nil {
		return 0, c.hardErr
	}
	if c.rcvFin {
		return 0, io.EOF
	}
	if c.st == StateClosed {
		return 0, io.EOF
	}
	return 0, ErrWouldBlock
}

// Write copies as much of b as fits in the send buffer and returns how
// much; ErrWouldBlock when nothing fits (or the handshake is not done).
// Errors: EPIPE after CloseWrite, the error that ended the connection,
// net.ErrClosed after Close.
func (c *Conn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	if c.hardErr != nil {
		return 0, c.hardErr
	}
	if c.sndShut {
		return 0, syscall.EPIPE
	}
	switch c.st {
	case StateSynSent, StateSynReceived:
		return 0, ErrWouldBlock
	case StateEstablished, StateCloseWait:
	default:
		return 0, syscall.EPIPE
	}
	if len(b) == 0 {
		return 0, nil
	}
	space := c.sndBufLimit() - c.sendq.len()
	if space <= 0 {
		return 0, ErrWouldBlock
	}
	n := min(len(b), space)
	c.sendq.write(b[:n])
	c.nowCache = c.stampOf(c.p.clk.Now())
	c.output()
	c.nowCache = 0
	return n, nil
}

// sndBufLimit is the send buffer: the set size, or grown with the
// congestion window up to net.inet.tcp.wmem_max (Linux tcp_sndbuf_expand).
func (c *Conn) sndBufLimit() int {
	if c.sndBufFixed {
		return c.sndBuf
	}
	want := 2 * max(c.ccs.CWnd, c.sndWnd/2)
	if want > c.sndBuf {
		c.sndBuf = min(want, int(c.p.tun.WmemMax.Load()))
	}
	return c.sndBuf
}

// CloseWrite queues a FIN after the data already written (shutdown
// SHUT_WR). Writes then fail with EPIPE.
func (c *Conn) CloseWrite() error {
	c.mu.Lock()
	defer c.unlock()
	if c.closed {
		return net.ErrClosed
	}
	if c.sndShut {
		return nil
	}
	switch c.st {
	case StateSynSent, StateSynReceived:
		c.sndShut = true // the FIN follows the handshake
		return nil
	case StateEstablished, StateCloseWait:
		c.sndShut = true
		c.queueFIN()
		c.output()
		return nil
	}
	if c.hardErr != nil {
		return c.hardErr
	}
	return syscall.ENOTCONN
}

// queueFIN marks the end of the stream: the FIN follows the queued data
// (RFC 9293 §3.10.4, CLOSE call).
func (c *Conn) queueFIN() {
	c.sndShut = true
	if !c.finQueued {
		c.finQueued = true
		c.finSeq = c.sendq.end()
	}
	switch c.st {
	case StateEstablished:
		c.st = StateFinWait1
	case StateCloseWait:
		c.st = StateLastAck
	}
}

// Close closes the connection without blocking: the queued data and a FIN
// go out in the background. It resets the connection instead when unread
// data is queued (as Linux does, RFC 9293 §3.10.4 leaves it open) or when
// linger is on with a zero timeout. Later calls return net.ErrClosed.
func (c *Conn) Close() error {
	c.mu.Lock()
	defer c.unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	switch {
	case c.st == StateClosed:
		c.recvq.release()
		c.removed = true
		c.closeDone()
		return nil
	case c.st == StateSynSent:
		c.toClosed(nil)
		return nil
	case c.opts.LingerOn && c.opts.Linger == 0:
		c.p.stats.AbortOnLinger.Inc()
		c.resetAndClose()
		return nil
	case c.recvq.n > 0:
		c.p.stats.AbortOnClose.Inc()
		c.resetAndClose()
		return nil
	}
	c.recvq.release()
	switch c.st {
	case StateSynReceived, StateEstablished, StateCloseWait:
		c.queueFIN()
		c.output()
	case StateFinWait2:
		c.armFinWait2()
	}
	c.readable.signal()
	c.writable.signal()
	return nil
}

// Abort resets the connection at once (RFC 9293 §3.10.5).
func (c *Conn) Abort() {
	c.mu.Lock()
	defer c.unlock()
	c.closed = true
	if c.st == StateClosed {
		c.recvq.release()
		c.removed = true
		c.closeDone()
		return
	}
	c.resetAndClose()
}

// resetAndClose sends RST (in synchronized states) and closes.
func (c *Conn) resetAndClose() {
	if c.st.synchronized() && c.st != StateTimeWait {
		c.sendRST(c.sndNxt)
	}
	c.toClosed(nil)
}

// reuseTimeWait ends TIME-WAIT early so that a new connection (Dial) can
// take the 4-tuple, when timestamps make it safe: the new incarnation's
// segments carry newer timestamps than any old duplicate, which the peer's
// PAWS rejects (RFC 6191; Linux tcp_tw_reuse waits one second for the
// timestamp clock to move on). It reports whether it did.
func (c *Conn) reuseTimeWait(now time.Time) bool {
	c.mu.Lock()
	defer c.unlock()
	if c.st != StateTimeWait || !c.tsOK || now.Sub(c.timeOf(c.tsRecentAt)) < time.Second {
		return false
	}
	c.p.stats.TimeWaitReused.Inc()
	c.toClosed(nil)
	return true
}

// info describes the connection for listings.
func (c *Conn) info() proto.SocketInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return proto.SocketInfo{Proto: "tcp", Local: c.tid.local, Remote: c.tid.remote,
		State: c.st.ssName(), RecvQ: c.recvq.n, SendQ: c.sendq.len()}
}
