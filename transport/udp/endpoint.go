package udp

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"

	"ustack/buf"
	"ustack/link"
	"ustack/proto"
	"ustack/transport/internal/rxq"
	"ustack/wire"
)

// Options are the settings of an endpoint at Bind.
type Options struct {
	// ReuseAddr lets endpoints bind overlapping addresses on one port when
	// all of them set it (SO_REUSEADDR).
	ReuseAddr bool
	// Broadcast allows sending to broadcast addresses (SO_BROADCAST).
	Broadcast bool
	// RecvBuffer bounds the receive queue in payload bytes (SO_RCVBUF);
	// 0 means net.inet.udp.recvspace.
	RecvBuffer int
	// V6Only keeps an endpoint bound to the IPv6 wildcard (::) from
	// receiving IPv4 datagrams (IPV6_V6ONLY). Without it the endpoint is
	// dual-stack, as Go's "udp" sockets are: IPv4 datagrams that no IPv4
	// endpoint takes reach it, their senders as IPv4-mapped addresses
	// (RFC 4291 §2.5.5.2, RFC 3493 §3.7).
	V6Only bool
}

// Endpoint is one UDP endpoint: a local address and port, optionally
// connected to one remote address and port, with a receive queue. Its
// methods are safe for concurrent use and never block.
type Endpoint struct {
	p      *Protocol
	reuse  bool // fixed at Bind
	v6only bool // fixed at Bind

	// addrs changes only under p.mu (held for writing); readers load it
	// without locks.
	addrs atomic.Pointer[addrs]

	broadcast atomic.Bool
	ttl       atomic.Uint32 // 0: the network's default

	// rx holds received payloads and the pending asynchronous error
	// (SO_ERROR), bounded by the receive buffer.
	rx *rxq.Queue[netip.AddrPort]

	mu     sync.Mutex
	closed bool
	groups []group // multicast memberships, left on Close
}

type group struct {
	ifIndex int
	addr    netip.Addr
}

type addrs struct {
	local netip.AddrPort // address is the unspecified address for a wildcard bind; no zone
	// remote is invalid when not connected. A link-local peer keeps the
	// zone it was connected with, which routes the datagrams sent to it.
	remote netip.AddrPort
}

func newEndpoint(p *Protocol, o Options, rcv int) *Endpoint {
	e := &Endpoint{p: p, reuse: o.ReuseAddr, v6only: o.V6Only, rx: rxq.New[netip.AddrPort](rcv)}
	e.broadcast.Store(o.Broadcast)
	return e
}

// LocalAddr is the bound address and port; the address is unspecified for
// a wildcard bind that is not connected.
func (e *Endpoint) LocalAddr() netip.AddrPort { return e.addrs.Load().local }

// RemoteAddr is the connected peer, or the zero AddrPort.
func (e *Endpoint) RemoteAddr() netip.AddrPort { return e.addrs.Load().remote }

// SetBroadcast allows or forbids sending to broadcast addresses.
func (e *Endpoint) SetBroadcast(on bool) { e.broadcast.Store(on) }

// SetTTL sets the TTL (hop limit) of sent datagrams; 0 restores the
// network's default.
func (e *Endpoint) SetTTL(ttl uint8) { e.ttl.Store(uint32(ttl)) }

// SetRecvBuffer bounds the receive queue to n payload bytes (at least 1).
// Datagrams already queued stay.
func (e *Endpoint) SetRecvBuffer(n int) { e.rx.SetLimit(n) }

// Readable returns a channel that receives a value whenever a datagram or an
// error arrives. It has a buffer of one and is never closed; a reader
// checks Recv and Err after each wake-up.
func (e *Endpoint) Readable() <-chan struct{} { return e.rx.Readable() }

// Connect sets the endpoint's peer (RFC 1122 §4.1.3.4 leaves filtering to
// the application; like the BSD socket API, a connected endpoint receives
// only from raddr). A link-local raddr needs a zone naming its interface
// (RFC 4007 §6); datagrams from it match whatever the zone. It resolves a route to raddr and, if the endpoint is
// bound to the wildcard address, binds it to the route's source address as
// Linux does. Connecting again replaces the peer. Errors: EINVAL for an
// invalid raddr, ENETUNREACH when there is no route, EACCES for a
// broadcast peer without SetBroadcast.
func (e *Endpoint) Connect(raddr netip.AddrPort) error {
	raddr = netip.AddrPortFrom(raddr.Addr().Unmap(), raddr.Port())
	if !raddr.Addr().IsValid() {
		return syscall.EINVAL
	}
	cur := e.addrs.Load()
	var src netip.Addr
	if !cur.local.Addr().IsUnspecified() {
		src = cur.local.Addr()
	}
	r, err := e.p.route(raddr.Addr(), src)
	if err != nil {
		return err
	}
	if r.Broadcast && !e.broadcast.Load() {
		return syscall.EACCES
	}
	p := e.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if e.isClosed() {
		return net.ErrClosed
	}
	cur = e.addrs.Load()
	p.unlink(e)
	local := cur.local
	if local.Addr().IsUnspecified() && r.Src.IsValid() {
		local = netip.AddrPortFrom(r.Src, local.Port())
	}
	e.addrs.Store(&addrs{local: local, remote: raddr})
	p.ports[local.Port()] = append(p.ports[local.Port()], e)
	t := tupleOf(local, raddr)
	p.conn[t] = append(p.conn[t], e)
	return nil
}

// route resolves dst, mapping "no route" to ENETUNREACH.
func (p *Protocol) route(dst, src netip.Addr) (proto.Route, error) {
	r, err := p.net.Route(dst, src, 0)
	if errors.Is(err, proto.ErrNoRoute) {
		err = syscall.ENETUNREACH
	}
	return r, err
}

// Write sends b to the connected peer (EDESTADDRREQ if not connected).
func (e *Endpoint) Write(b []byte) (int, error) { return e.WriteTo(b, netip.AddrPort{}) }

// WriteTo sends b as one datagram to to, or to the connected peer when to
// is the zero AddrPort. It copies b. A link-local to needs a zone (an
// interface name or index), as Recv reports link-local senders. Errors: a pending asynchronous error
// (connected endpoints, as Linux reports it on the next send), EMSGSIZE
// for a payload over 65507 bytes (IPv4), EDESTADDRREQ without a
// destination, EINVAL for port 0, EACCES to a broadcast address without
// SetBroadcast, ENETUNREACH without a route, and whatever the network
// returns. net.ErrClosed after Close.
func (e *Endpoint) WriteTo(b []byte, to netip.AddrPort) (int, error) {
	if e.isClosed() {
		return 0, net.ErrClosed
	}
	a := e.addrs.Load()
	if err := e.rx.TakeErr(); err != nil {
		return 0, err
	}
	if !to.Addr().IsValid() {
		if !a.remote.IsValid() {
			return 0, syscall.EDESTADDRREQ
		}
		to = a.remote
	}
	dst := to.Addr().Unmap()
	if !dst.IsValid() {
		return 0, syscall.EDESTADDRREQ
	}
	if to.Port() == 0 {
		return 0, syscall.EINVAL
	}
	if (dst.Is4() && len(b) > maxPayload4) || len(b) > maxPayload6 {
		return 0, syscall.EMSGSIZE
	}
	var src netip.Addr
	if !a.local.Addr().IsUnspecified() {
		src = a.local.Addr()
	}
	p := e.p
	r, err := p.route(dst, src)
	if err != nil {
		return 0, err
	}
	if (r.Broadcast || dst == netip.AddrFrom4([4]byte{255, 255, 255, 255})) && !e.broadcast.Load() {
		return 0, syscall.EACCES
	}

	n := wire.UDPHeaderLen + len(b)
	pkt := buf.New(p.net.MaxHeaderLen()+wire.UDPHeaderLen, len(b))
	copy(pkt.Bytes(), b)
	h := wire.UDP(pkt.Prepend(wire.UDPHeaderLen))
	f := wire.UDPFields{SrcPort: a.local.Port(), DstPort: to.Port(), Length: n}
	f.Encode(h)
	// RFC 1122 §4.1.3.4: checksums on by default; IPv6 requires them
	// (RFC 8200 §8.1).
	if p.sendChecksum.Load() || !dst.Is4() {
		pseudo := wire.PseudoHeaderChecksum(wire.IPProtoUDP, r.Src, dst, n)
		if r.Caps.Has(link.CapTxChecksum) {
			// Partial checksum: CsumStart is relative to the UDP header;
			// the network layer adds its header length.
			h.SetChecksum(pseudo)
			pkt.Offload = buf.Offload{NeedsCsum: true, CsumStart: 0, CsumOffset: 6}
		} else {
			h.SetChecksum(wire.UDPChecksum(pseudo, wire.Checksum(pkt.Bytes(), 0)))
		}
	}
	wp := proto.WriteParams{TTL: uint8(e.ttl.Load())}
	if wp.TTL == 0 && r.Multicast {
		wp.TTL = 1 // RFC 1112 §6.1: multicast TTL defaults to 1
	}
	if err := p.net.WritePacket(r, wire.IPProtoUDP, wp, pkt); err != nil {
		return 0, err
	}
	p.stats.OutPackets.Inc()
	p.stats.OutBytes.Add(uint64(n))
	return len(b), nil
}

// Recv takes the oldest queued datagram without blocking. The caller owns
// pkt, which holds only the payload, and must Release it. ok is false when
// the queue is empty. A link-local sender carries the receiving interface
// as its zone.
func (e *Endpoint) Recv() (pkt *buf.Packet, from netip.AddrPort, ok bool) { return e.rx.Pop() }

// Err returns and clears the pending asynchronous error: an ICMP error
// about a datagram this connected endpoint sent (SO_ERROR).
func (e *Endpoint) Err() error { return e.rx.TakeErr() }

func (e *Endpoint) isClosed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closed
}

// Close unbinds the endpoint and releases its queued datagrams. Later
// writes fail with net.ErrClosed; Readable receives a value. Closing twice
// does nothing.
func (e *Endpoint) Close() {
	p := e.p
	p.mu.Lock()
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		p.mu.Unlock()
		return
	}
	e.closed = true
	p.unlink(e)
	groups := e.groups
	e.groups = nil
	e.mu.Unlock()
	p.mu.Unlock()
	for _, g := range groups {
		p.net.LeaveGroup(g.ifIndex, g.addr)
	}
	e.rx.Close()
}

// JoinGroup makes the endpoint's stack accept datagrams for the multicast
// group on the interface (0: every interface), as IP_ADD_MEMBERSHIP does;
// the membership ends with LeaveGroup or Close. Datagrams to the group
// reach every endpoint bound to its port (RFC 1112 §6.2: membership is per
// host; the port picks the sockets).
func (e *Endpoint) JoinGroup(ifIndex int, g netip.Addr) error {
	g = g.Unmap()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return net.ErrClosed
	}
	if slices.Contains(e.groups, group{ifIndex, g}) {
		return syscall.EADDRINUSE
	}
	if err := e.p.net.JoinGroup(ifIndex, g); err != nil {
		return err
	}
	e.groups = append(e.groups, group{ifIndex, g})
	return nil
}

// LeaveGroup ends a membership JoinGroup began.
func (e *Endpoint) LeaveGroup(ifIndex int, g netip.Addr) error {
	g = g.Unmap()
	e.mu.Lock()
	defer e.mu.Unlock()
	i := slices.Index(e.groups, group{ifIndex, g})
	if i < 0 {
		return syscall.EADDRNOTAVAIL
	}
	e.groups = slices.Delete(e.groups, i, i+1)
	return e.p.net.LeaveGroup(ifIndex, g)
}

// info describes e for listings. p.mu is held.
func (e *Endpoint) info() proto.SocketInfo {
	a := e.addrs.Load()
	q := e.rx.Bytes()
	st := "UNCONN"
	if a.remote.IsValid() {
		st = "ESTAB"
	}
	return proto.SocketInfo{Proto: "udp", Local: a.local, Remote: a.remote, State: st, RecvQ: q}
}
