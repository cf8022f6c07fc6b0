package main

import (
	"context"
	"net"
	"net/netip"
	"runtime"

	"ustack/link/pipe"
	"ustack/socket"
	"ustack/stack"
)

// ustackPair is two ustack stacks joined by link/pipe: an Ethernet pipe
// with no offloads advertised, so checksums are computed and verified in
// software on both sides, and each side's frames are handed to the peer's
// reader goroutine through a bounded queue (512 frames, the pipe's
// default). Every other setting is the stack's and socket's default
// (CUBIC, SACK, window scaling, timestamps, no Nagle and 15 s keep-alive
// as Go's net sets them).
type ustackPair struct {
	c, s   *stack.Stack
	ea, eb *pipe.Endpoint
	addrs  []netip.Addr
	// noKeepAlive turns keep-alive off on both ends (system
	// "ustack/nokeepalive"); by default ustack's sockets probe after 15 s
	// idle, as Go's net does for kernel sockets.
	noKeepAlive bool
}

func newUstackPair(mtu int, noKeepAlive bool) (*ustackPair, error) {
	p := &ustackPair{
		noKeepAlive: noKeepAlive,
		c:           stack.New(stack.Options{Name: "client", NoLoopback: true}),
		s:           stack.New(stack.Options{Name: "server", NoLoopback: true}),
	}
	// One receive queue per core, as a multi-queue NIC or veth spreads
	// flows (RSS); a single flow uses one queue either way.
	ea, eb := pipe.New(pipe.Config{MTU: mtu, Queues: runtime.GOMAXPROCS(0)})
	p.ea, p.eb = ea, eb
	if _, err := p.c.AddInterface("eth0", ea); err != nil {
		p.close()
		return nil, err
	}
	if _, err := p.s.AddInterface("eth0", eb); err != nil {
		p.close()
		return nil, err
	}
	if err := p.c.AddAddress("eth0", netip.PrefixFrom(clientAddr, 8)); err != nil {
		p.close()
		return nil, err
	}
	if err := p.s.AddAddress("eth0", netip.PrefixFrom(serverAddr, 8)); err != nil {
		p.close()
		return nil, err
	}
	p.addrs = []netip.Addr{clientAddr}
	return p, nil
}

func (p *ustackPair) listen(port uint16) (net.Listener, error) {
	l, err := socket.ListenTCP(p.s, netip.AddrPortFrom(serverAddr, port))
	if err != nil {
		return nil, err
	}
	if p.noKeepAlive {
		return noKeepAliveListener{l}, nil
	}
	return l, nil
}

// noKeepAliveListener turns keep-alive off on each accepted connection.
type noKeepAliveListener struct{ *socket.TCPListener }

func (l noKeepAliveListener) Accept() (net.Conn, error) {
	c, err := l.AcceptTCP()
	if err != nil {
		return nil, err
	}
	c.SetKeepAlive(false)
	return c, nil
}

func (p *ustackPair) dial(laddr, raddr netip.AddrPort) (net.Conn, error) {
	d := socket.Dialer{Stack: p.c}
	if laddr.IsValid() {
		d.LocalAddr = net.TCPAddrFromAddrPort(laddr)
	}
	if p.noKeepAlive {
		d.KeepAlive = -1
	}
	return d.DialContext(context.Background(), "tcp", raddr.String())
}

func (p *ustackPair) clientAddrs(n int) ([]netip.Addr, error) {
	for i := len(p.addrs); i < n; i++ {
		a := extraClientAddr(i)
		if err := p.c.AddAddress("eth0", netip.PrefixFrom(a, 8)); err != nil {
			return nil, err
		}
		p.addrs = append(p.addrs, a)
	}
	return p.addrs[:n], nil
}

func (p *ustackPair) retransmits() uint64 {
	return p.c.Stats()["tcp.retrans_segs"] + p.s.Stats()["tcp.retrans_segs"]
}

// counters returns every non-zero counter of both stacks and both pipe
// ends, for diagnosing a failed run.
func (p *ustackPair) counters() map[string]uint64 {
	out := map[string]uint64{}
	for side, st := range map[string]*stack.Stack{"client.": p.c, "server.": p.s} {
		for k, v := range st.Stats() {
			if v != 0 {
				out[side+k] = v
			}
		}
	}
	for side, e := range map[string]*pipe.Endpoint{"client.pipe.": p.ea, "server.pipe.": p.eb} {
		e.LinkStats().Visit(side, func(k string, v uint64) {
			if v != 0 {
				out[k] = v
			}
		})
	}
	return out
}

func (p *ustackPair) close() {
	p.c.Close()
	p.s.Close()
}
