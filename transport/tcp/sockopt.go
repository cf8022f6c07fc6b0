package tcp

import "time"

// Socket options: the setters the socket layer calls (SO_*, TCP_*).

// SetNoDelay turns Nagle's algorithm off or on.
func (c *Conn) SetNoDelay(on bool) {
	c.mu.Lock()
	defer c.unlock()
	c.opts.NoDelay = on
	if on {
		c.output()
	}
}

// SetKeepAlive turns keep-alive probes on or off.
func (c *Conn) SetKeepAlive(on bool) {
	c.mu.Lock()
	defer c.unlock()
	c.opts.KeepAlive = on
	c.keepProbes = 0
	c.armKeepalive()
}

// SetKeepAlivePeriod sets the idle time before the first probe and the
// interval between probes.
func (c *Conn) SetKeepAlivePeriod(d time.Duration) {
	c.mu.Lock()
	defer c.unlock()
	c.opts.KeepAliveIdle = d
	c.opts.KeepAliveInterval = d
	c.armKeepalive()
}

// SetLinger sets SO_LINGER: on with d == 0 makes Close reset the
// connection.
func (c *Conn) SetLinger(on bool, d time.Duration) {
	c.mu.Lock()
	defer c.unlock()
	c.opts.LingerOn, c.opts.Linger = on, d
}

// SetRecvBuffer sets the receive buffer and turns auto-tuning off. The
// window already advertised is not withdrawn (RFC 9293 §3.8.6).
func (c *Conn) SetRecvBuffer(n int) {
	c.mu.Lock()
	defer c.unlock()
	c.rcvBuf, c.rcvBufFixed = max(n, 2048), true
}

// SetSendBuffer sets the send buffer.
func (c *Conn) SetSendBuffer(n int) {
	c.mu.Lock()
	defer c.unlock()
	c.sndBuf, c.sndBufFixed = max(n, 2048), true
	c.writable.signal()
}

// SetUserTimeout sets TCP_USER_TIMEOUT (RFC 5482): 0 restores the
// retransmission limits.
func (c *Conn) SetUserTimeout(d time.Duration) {
	c.mu.Lock()
	defer c.unlock()
	c.opts.UserTimeout = d
}

// SetCongestionControl switches the congestion control algorithm. The
// new controller starts from the current window.
func (c *Conn) SetCongestionControl(name string) error {
	c.mu.Lock()
	defer c.unlock()
	ctl, err := c.p.cc.New(name)
	if err != nil {
		return err
	}
	cwnd, ssth := c.ccs.CWnd, c.ccs.SSThresh
	c.cc = ctl
	c.opts.CongestionControl = name
	if c.smss > 0 {
		ctl.Init(&c.ccs, c.p.clk.Now())
		if c.connected {
			c.ccs.CWnd, c.ccs.SSThresh = cwnd, ssth
		}
	}
	return nil
}
