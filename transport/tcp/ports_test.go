package tcp

import (
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"ustack/internal/seqnum"
	"ustack/wire"
)

var peer80 = netip.AddrPortFrom(peerIP, 80)

func mustDial(t *testing.T, e *env, laddr, raddr netip.AddrPort, o Options) *Conn {
	t.Helper()
	c, err := e.p.Dial(laddr, raddr, o)
	if err != nil {
		t.Fatalf("Dial(%v, %v): %v", laddr, raddr, err)
	}
	return c
}

func mustListen(t *testing.T, e *env, laddr netip.AddrPort, backlog int, o Options) *Listener {
	t.Helper()
	l, err := e.p.Listen(laddr, backlog, o)
	if err != nil {
		t.Fatalf("Listen(%v): %v", laddr, err)
	}
	return l
}

// TestEphemeralUnique: Dial without a port gets distinct ports in the
// range for one destination, and the SYN leaves from them.
func TestEphemeralUnique(t *testing.T) {
	e := newEnv(t)
	seen := map[uint16]bool{}
	for i := 0; i < 2000; i++ {
		c := mustDial(t, e, netip.AddrPort{}, peer80, Options{})
		port := c.id().local.Port()
		if port < defaultPortFirst {
			t.Fatalf("port %d outside the ephemeral range", port)
		}
		if seen[port] {
			t.Fatalf("port %d given twice to one destination", port)
		}
		seen[port] = true
		if c.id().local.Addr() != localIP {
			t.Fatalf("local address %v, want the route's source %v", c.id().local.Addr(), localIP)
		}
		syn := e.net.takeOne(t)
		if syn.flags&wire.TCPFlagSYN == 0 || syn.src != c.id().local || syn.dst != peer80 {
			t.Fatalf("sent %+v, want a SYN from %v", syn, c.id().local)
		}
	}
	// Successive choices are not sequential (RFC 6056: hard to guess).
	c1 := mustDial(t, e, netip.AddrPort{}, netip.AddrPortFrom(peerIP, 81), Options{})
	c2 := mustDial(t, e, netip.AddrPort{}, netip.AddrPortFrom(peerIP, 82), Options{})
	if d := int(c2.id().local.Port()) - int(c1.id().local.Port()); d == 1 {
		t.Logf("ports %d and %d for two destinations are consecutive", c1.id().local.Port(), c2.id().local.Port())
	}
}

// TestEphemeralExhaustion: a range of n ports gives n connections to one
// destination, then EADDRNOTAVAIL; other destinations share the ports;
// a removed connection frees its tuple.
func TestEphemeralExhaustion(t *testing.T) {
	e := newEnv(t)
	e.first.Store(50000)
	e.last.Store(50009)
	var conns []*Conn
	for range 10 {
		conns = append(conns, mustDial(t, e, netip.AddrPort{}, peer80, Options{}))
	}
	if _, err := e.p.Dial(netip.AddrPort{}, peer80, Options{}); !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Fatalf("Dial with the range used up: %v, want EADDRNOTAVAIL", err)
	}
	for range 10 {
		c := mustDial(t, e, netip.AddrPort{}, netip.AddrPortFrom(peerIP, 8080), Options{})
		if p := c.id().local.Port(); p < 50000 || p > 50009 {
			t.Fatalf("port %d outside 50000-50009", p)
		}
	}
	conns[3].Abort()
	c := mustDial(t, e, netip.AddrPort{}, peer80, Options{})
	if c.id().local != conns[3].id().local {
		t.Errorf("after Abort got %v, want the freed %v", c.id().local, conns[3].id().local)
	}
}

// TestEphemeralSkipsBound: Dial's selection never shares a port with a
// listener or an explicit bind.
func TestEphemeralSkipsBound(t *testing.T) {
	e := newEnv(t)
	e.first.Store(50000)
	e.last.Store(50002)
	mustListen(t, e, netip.AddrPortFrom(netip.Addr{}, 50000), 10, Options{})
	mustDial(t, e, netip.AddrPortFrom(netip.Addr{}, 50001), peer80, Options{})
	for i := range 5 {
		c := mustDial(t, e, netip.AddrPort{}, netip.AddrPortFrom(peerIP, uint16(1000+i)), Options{})
		if p := c.id().local.Port(); p != 50002 {
			t.Fatalf("ephemeral port %d, want 50002 (50000 listens, 50001 bound)", p)
		}
	}
}

func TestBindConflicts(t *testing.T) {
	any := func(port uint16) netip.AddrPort { return netip.AddrPortFrom(netip.Addr{}, port) }
	at := func(a netip.Addr, port uint16) netip.AddrPort { return netip.AddrPortFrom(a, port) }
	reuse := Options{ReuseAddr: true}
	e := newEnv(t)

	l := mustListen(t, e, any(8080), 10, Options{})
	if l.Addr() != netip.MustParseAddrPort("0.0.0.0:8080") {
		t.Errorf("Addr = %v", l.Addr())
	}
	for _, tc := range []struct {
		name string
		f    func() error
		want error
	}{
		{"second wildcard listener", func() error { _, err := e.p.Listen(any(8080), 1, Options{}); return err }, syscall.EADDRINUSE},
		{"specific under wildcard", func() error { _, err := e.p.Listen(at(localIP, 8080), 1, Options{}); return err }, syscall.EADDRINUSE},
		{"listeners never share, ReuseAddr or not", func() error { _, err := e.p.Listen(at(localIP, 8080), 1, reuse); return err }, syscall.EADDRINUSE},
		{"dial from a listening port", func() error { _, err := e.p.Dial(at(localIP, 8080), peer80, reuse); return err }, syscall.EADDRINUSE},
		{"address not local", func() error { _, err := e.p.Listen(at(peerIP, 1), 1, Options{}); return err }, syscall.EADDRNOTAVAIL},
		{"multicast", func() error { _, err := e.p.Listen(at(netip.MustParseAddr("224.0.0.1"), 1), 1, Options{}); return err }, syscall.EINVAL},
	} {
		if err := tc.f(); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// Distinct specific addresses share a port.
	mustListen(t, e, at(localIP, 8081), 1, Options{})
	mustListen(t, e, at(localIP2, 8081), 1, Options{})
	// Closing frees the port.
	l.Close()
	mustListen(t, e, any(8080), 1, Options{})

	// Explicitly bound connections: without ReuseAddr the port is taken;
	// with it on both, different 4-tuples share it, the same one cannot.
	mustDial(t, e, at(localIP, 40000), peer80, Options{})
	if _, err := e.p.Dial(at(localIP, 40000), netip.AddrPortFrom(peerIP, 81), Options{}); !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("second bind of a port: %v, want EADDRINUSE", err)
	}
	mustDial(t, e, at(localIP, 40001), peer80, reuse)
	mustDial(t, e, at(localIP, 40001), netip.AddrPortFrom(peerIP, 81), reuse)
	if _, err := e.p.Dial(at(localIP, 40001), peer80, reuse); !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Errorf("same 4-tuple twice: %v, want EADDRNOTAVAIL", err)
	}
	// A listener with ReuseAddr over connections that set it too (Linux:
	// allowed, they are not listening).
	mustListen(t, e, any(40001), 1, reuse)
	if _, err := e.p.Listen(any(40000), 1, reuse); !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("listen over a connection without ReuseAddr: %v, want EADDRINUSE", err)
	}
	// Port 0 listens on a free port.
	l0 := mustListen(t, e, any(0), 1, Options{})
	if l0.Addr().Port() < defaultPortFirst {
		t.Errorf("Listen on port 0 got port %d", l0.Addr().Port())
	}
}

// closeToTimeWait takes an accepted connection to TIME_WAIT: Close sends
// our FIN, the peer acknowledges it with its own.
func closeToTimeWait(t *testing.T, e *env, c *Conn, rcvNxt seqnum.Value) {
	t.Helper()
	e.net.take()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	var fin *sentSeg
	for _, s := range e.net.take() {
		if s.flags&wire.TCPFlagFIN != 0 {
			fin = &s
		}
	}
	if fin == nil {
		t.Fatal("Close sent no FIN")
	}
	e.inject(t, seg{src: c.id().remote, dst: c.id().local, seq: rcvNxt, ack: fin.seq + 1,
		flags: wire.TCPFlagFIN | wire.TCPFlagACK})
	if st := c.state(); st != StateTimeWait {
		t.Fatalf("state %v after the FIN exchange, want TIME_WAIT", st)
	}
}

// TestReuseAddrTimeWait: a server restarting on its port while its old
// connection sits in TIME_WAIT needs ReuseAddr (and gets it); while the
// connection is open it cannot.
func TestReuseAddrTimeWait(t *testing.T) {
	e := newEnv(t)
	laddr := netip.AddrPortFrom(netip.Addr{}, 7000)
	l := mustListen(t, e, laddr, 10, Options{})
	peer := netip.AddrPortFrom(peerIP, 5555)
	rcvNxt, _ := e.handshake(t, l, peer, 1000)
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	for _, o := range []Options{{}, {ReuseAddr: true}} {
		if _, err := e.p.Listen(laddr, 10, o); !errors.Is(err, syscall.EADDRINUSE) {
			t.Errorf("Listen %+v over an established connection: %v, want EADDRINUSE", o, err)
		}
	}
	closeToTimeWait(t, e, c, rcvNxt)
	if _, err := e.p.Listen(laddr, 10, Options{}); !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("Listen without ReuseAddr over TIME_WAIT: %v, want EADDRINUSE", err)
	}
	l2 := mustListen(t, e, laddr, 10, Options{ReuseAddr: true})
	// The TIME_WAIT connection still owns its 4-tuple.
	if got, _ := e.p.conns.lookup(keyOf(c.id())); got != c {
		t.Errorf("TIME_WAIT connection no longer hashed")
	}
	l2.Close()
	// Removing the connection frees the port altogether.
	e.p.remove(c)
	mustListen(t, e, laddr, 10, Options{})
}

// TestDialReusesTimeWait: with tw_reuse, Dial takes over a 4-tuple in
// TIME_WAIT once the connection's timestamps are a second old; without,
// the tuple stays taken.
func TestDialReusesTimeWait(t *testing.T) {
	for _, reuse := range []string{"0", "1"} {
		t.Run("tw_reuse="+reuse, func(t *testing.T) {
			e := newEnv(t)
			e.sys.Set("net.inet.tcp.tw_reuse", reuse)
			l := mustListen(t, e, lport, 10, Options{})
			peer := peerN(1)
			ts := func(v uint32) wire.TCPOptions { return wire.TCPOptions{HasTimestamps: true, TSVal: v} }
			e.inject(t, seg{src: peer, dst: lport, seq: 100, flags: fSYN,
				opts: wire.TCPOptions{MSS: 1460, HasMSS: true, HasTimestamps: true, TSVal: 1}})
			sa := e.net.takeOne(t)
			ack := ts(2)
			ack.TSEcr = sa.opts.TSVal
			e.inject(t, seg{src: peer, dst: lport, seq: 101, ack: sa.seq + 1, flags: fACK, opts: ack})
			c := mustAccept(t, l)
			l.Close()
			e.net.take()
			c.Close()
			var fin sentSeg
			for _, s := range e.net.take() {
				if s.flags&fFIN != 0 {
					fin = s
				}
			}
			o := ts(3)
			o.TSEcr = fin.opts.TSVal
			e.inject(t, seg{src: peer, dst: lport, seq: 101, ack: fin.seq + 1, flags: fFIN | fACK, opts: o})
			if st := c.state(); st != StateTimeWait {
				t.Fatalf("state %v, want TIME_WAIT", st)
			}
			e.clk.Advance(1100 * time.Millisecond)
			nc, err := e.p.Dial(lport, peer, Options{ReuseAddr: true})
			if reuse == "0" {
				if !errors.Is(err, syscall.EADDRNOTAVAIL) {
					t.Fatalf("Dial over TIME_WAIT without tw_reuse: %v, want EADDRNOTAVAIL", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Dial over TIME_WAIT: %v", err)
			}
			if got, _ := e.p.conns.lookup(keyOf(nc.id())); got != nc || c.state() != StateClosed {
				t.Fatalf("tuple not taken over (old state %v)", c.state())
			}
		})
	}
}
