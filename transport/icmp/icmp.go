// Package icmp is ustack's ICMP echo endpoints ("ping sockets", as Linux's
// SOCK_DGRAM/IPPROTO_ICMP and IPPROTO_ICMPV6): a transport above the
// network layer that lets programs send ICMPv4 (RFC 792) or ICMPv6 (RFC
// 4443 §4) echo requests and receive the replies whose identifier is
// theirs, without a raw socket. One Protocol serves one family: New for
// ICMPv4, New6 for ICMPv6.
//
// It owns the endpoints, their identifiers (the "port" of a ping socket),
// their receive queues and the delivery of ICMP errors about their
// requests. It does not answer echo requests, verify ICMP checksums or
// parse ICMP errors: the network layer (network/ipv4) does that and hands
// this protocol the echo replies and other messages it does not consume
// itself, and errors through HandleError (network/ipv6 likewise for
// ICMPv6).
package icmp

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"

	"ustack/buf"
	"ustack/internal/stats"
	"ustack/proto"
	"ustack/transport/internal/rxq"
	"ustack/wire"
)

// DefaultRecvBuffer bounds an endpoint's receive queue, in message bytes.
const DefaultRecvBuffer = 212992

// maxMessage is the largest ICMPv4 message: 65535 minus the IPv4 header.
const maxMessage = 65535 - wire.IPv4MinHeaderLen

// Protocol is the ICMP echo transport of one stack for one family. It
// implements proto.TransportProtocol for wire.IPProtoICMP (New) or
// wire.IPProtoICMPv6 (New6).
type Protocol struct {
	net   proto.Network
	v6    bool
	log   *slog.Logger
	stats proto.Counters

	mu     sync.RWMutex
	ids    map[uint16][]*Endpoint
	nextID uint16 // where the search for a free identifier starts
}

// New returns the ICMP echo protocol sending through n. A nil log discards.
func New(n proto.Network, log *slog.Logger) *Protocol {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return newProtocol(n, log, false)
}

// New6 returns the ICMPv6 echo protocol sending through n. A nil log
// discards.
func New6(n proto.Network, log *slog.Logger) *Protocol {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return newProtocol(n, log, true)
}

func newProtocol(n proto.Network, log *slog.Logger, v6 bool) *Protocol {
	p := &Protocol{net: n, v6: v6, log: log, ids: make(map[uint16][]*Endpoint)}
	var b [2]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("icmp: crypto/rand: " + err.Error())
	}
	p.nextID = binary.BigEndian.Uint16(b[:])
	return p
}

// Protocol returns wire.IPProtoICMP, or wire.IPProtoICMPv6 for New6's.
func (p *Protocol) Protocol() wire.IPProtocol {
	if p.v6 {
		return wire.IPProtoICMPv6
	}
	return wire.IPProtoICMP
}

// Stats returns the protocol's counters.
func (p *Protocol) Stats() *proto.Counters { return &p.stats }

// VisitStats reports the counters under "icmp.socket." ("icmp6.socket."
// for ICMPv6).
func (p *Protocol) VisitStats(v stats.Visitor) {
	if p.v6 {
		p.stats.Visit("icmp6.socket.", v)
		return
	}
	p.stats.Visit("icmp.socket.", v)
}

// Sockets calls f for every endpoint, ordered by identifier. Local's port
// is the identifier.
func (p *Protocol) Sockets(f func(proto.SocketInfo)) {
	p.mu.RLock()
	var infos []proto.SocketInfo
	name := "icmp"
	if p.v6 {
		name = "icmp6"
	}
	for _, eps := range p.ids {
		for _, e := range eps {
			infos = append(infos, proto.SocketInfo{Proto: name,
				Local: netip.AddrPortFrom(e.local, e.id), State: "UNCONN", RecvQ: e.rx.Bytes()})
		}
	}
	p.mu.RUnlock()
	slices.SortFunc(infos, func(a, b proto.SocketInfo) int {
		return a.Local.Compare(b.Local)
	})
	for _, in := range infos {
		f(in)
	}
}

// Open creates an endpoint on laddr (the zero or unspecified address: every
// local address) with echo identifier id; id 0 picks one no endpoint uses.
// An identifier already used on an overlapping address fails with
// syscall.EADDRINUSE. laddr of the other family fails with
// syscall.EAFNOSUPPORT.
func (p *Protocol) Open(laddr netip.Addr, id uint16) (*Endpoint, error) {
	if p.v6 {
		laddr = laddr.WithZone("")
		if !laddr.IsValid() {
			laddr = netip.IPv6Unspecified()
		}
		if !laddr.Is6() || laddr.Is4In6() {
			return nil, syscall.EAFNOSUPPORT
		}
	} else {
		laddr = laddr.Unmap()
		if !laddr.IsValid() {
			laddr = netip.IPv4Unspecified()
		}
		if !laddr.Is4() {
			return nil, syscall.EAFNOSUPPORT
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if id == 0 {
		found := false
		for range 65535 {
			p.nextID++
			if p.nextID != 0 && len(p.ids[p.nextID]) == 0 {
				id, found = p.nextID, true
				break
			}
		}
		if !found {
			return nil, syscall.EADDRINUSE
		}
	} else {
		for _, o := range p.ids[id] {
			if o.local == laddr || o.local.IsUnspecified() || laddr.IsUnspecified() {
				return nil, syscall.EADDRINUSE
			}
		}
	}
	e := &Endpoint{p: p, local: laddr, id: id, rx: rxq.New[netip.Addr](DefaultRecvBuffer)}
	e.rx.SetErrQueue(errQueueLen) // ping reports an error per request
	p.ids[id] = append(p.ids[id], e)
	return e, nil
}

// find returns the endpoint with id bound to dst or the wildcard. p.mu is
// held.
func (p *Protocol) find(id uint16, dst netip.Addr) *Endpoint {
	var wild *Endpoint
	for _, e := range p.ids[id] {
		if e.local == dst {
			return e
		}
		if e.local.IsUnspecified() {
			wild = e
		}
	}
	return wild
}

// HandlePacket receives an ICMP message (its front is the ICMP header)
// that the network layer did not consume, with its checksum verified.
// Echo replies go to the endpoint with their identifier; it takes
// ownership of those. Anything else, or a reply no endpoint wants, returns
// proto.NoEndpoint and stays the caller's (which must not answer with an
// ICMP error: there is no port to be unreachable).
func (p *Protocol) HandlePacket(info proto.PacketInfo, pkt *buf.Packet) proto.Verdict {
	p.stats.InPackets.Inc()
	p.stats.InBytes.Add(uint64(pkt.Len()))
	b := pkt.Pullup(wire.ICMPv4HeaderLen)
	if b == nil {
		p.stats.Drop(proto.DropTruncated)
		return proto.NoEndpoint
	}
	var id uint16
	if p.v6 {
		m := wire.ICMPv6(b)
		if m.Type() != wire.ICMPv6EchoReply || m.Code() != 0 {
			p.stats.Drop(proto.DropUnsupported)
			return proto.NoEndpoint
		}
		id = m.ID()
	} else {
		m := wire.ICMPv4(b)
		if m.Type() != wire.ICMPv4EchoReply || m.Code() != 0 {
			p.stats.Drop(proto.DropUnsupported)
			return proto.NoEndpoint
		}
		id = m.ID()
	}
	p.mu.RLock()
	e := p.find(id, info.Dst.WithZone(""))
	p.mu.RUnlock()
	if e == nil {
		p.stats.Drop(proto.DropNoEndpoint)
		return proto.NoEndpoint
	}
	// Accepted while the queue holds less than the receive buffer.
	if e.rx.Push(pkt, info.Src) {
		p.stats.Delivered.Inc()
	} else {
		p.stats.Drop(proto.DropQueueFull)
	}
	return proto.Consumed
}

// HandleError delivers an ICMP error about an echo request an endpoint
// sent: the endpoint's next Err (and the socket's next read) reports it as
// an *Error. Unlike Linux ping sockets without IP_RECVERR, every error
// kind is reported, so that ping and traceroute can show them.
func (p *Protocol) HandleError(ie *proto.ICMPError) {
	if len(ie.Quote) < wire.ICMPv4HeaderLen {
		return
	}
	var id, seq uint16
	var src netip.Addr
	if p.v6 {
		q := wire.ICMPv6(ie.Quote)
		if q.Type() != wire.ICMPv6EchoRequest {
			return
		}
		id, seq, src = q.ID(), q.Seq(), ie.Src.WithZone("")
	} else {
		q := wire.ICMPv4(ie.Quote)
		if q.Type() != wire.ICMPv4Echo {
			return
		}
		id, seq, src = q.ID(), q.Seq(), ie.Src.Unmap()
	}
	p.mu.RLock()
	e := p.find(id, src)
	p.mu.RUnlock()
	if e == nil {
		return
	}
	e.rx.SetErr(&Error{Kind: ie.Kind, Type: ie.Type, Code: ie.Code, From: ie.From,
		Dst: ie.Dst, Seq: seq, MTU: ie.MTU})
}

// errQueueLen is how many ICMP errors an endpoint keeps for its reader, as
// a ping socket's error queue (IP_RECVERR) does: two requests failing at
// once (a neighbour that never answered) give two errors.
const errQueueLen = 16

// Error is an ICMP error about an echo request an endpoint sent.
// errors.Is(err, syscall.EHOSTUNREACH) and the like work through Unwrap.
type Error struct {
	Kind       proto.ErrorKind
	Type, Code uint8
	// From is the router or host that sent the error; Dst is the request's
	// destination and Seq its sequence number.
	From, Dst netip.Addr
	Seq       uint16
	MTU       int
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s from %s (icmp_seq=%d to %s)", e.Kind, e.From, e.Seq, e.Dst)
}

// Unwrap returns the errno a Linux socket would report.
func (e *Error) Unwrap() error { return e.Kind.Errno() }

// Endpoint is one ping endpoint. Its methods are safe for concurrent use
// and never block.
type Endpoint struct {
	p     *Protocol
	local netip.Addr
	id    uint16

	broadcast atomic.Bool
	ttl       atomic.Uint32
	closed    atomic.Bool // set once, under p.mu

	// rx holds the replies and their senders, and the pending error.
	rx *rxq.Queue[netip.Addr]
}

// LocalAddr is the bound address (unspecified: every local address).
func (e *Endpoint) LocalAddr() netip.Addr { return e.local }

// ID is the echo identifier of the endpoint's requests.
func (e *Endpoint) ID() uint16 { return e.id }

// SetBroadcast allows or forbids sending to broadcast addresses.
func (e *Endpoint) SetBroadcast(on bool) { e.broadcast.Store(on) }

// SetTTL sets the TTL of sent requests; 0 restores the default.
func (e *Endpoint) SetTTL(ttl uint8) { e.ttl.Store(uint32(ttl)) }

// SetRecvBuffer bounds the receive queue to n bytes (at least 1).
func (e *Endpoint) SetRecvBuffer(n int) { e.rx.SetLimit(n) }

// Readable returns a channel that receives a value whenever a reply or an
// error arrives. It has a buffer of one and is never closed.
func (e *Endpoint) Readable() <-chan struct{} { return e.rx.Readable() }

// WriteTo sends msg, an ICMP echo request (type 8, code 0, checksum,
// identifier, sequence, data; for ICMPv6 type 128), to dst. It copies msg,
// puts the endpoint's identifier in it and computes the checksum (for
// ICMPv6 over the pseudo-header, RFC 4443 §2.3). Errors: EINVAL for a message
// shorter than 8 bytes or not an echo request, EMSGSIZE when too long,
// EDESTADDRREQ for an invalid dst, EACCES to a broadcast address without
// SetBroadcast, ENETUNREACH without a route; net.ErrClosed after Close.
func (e *Endpoint) WriteTo(msg []byte, dst netip.Addr) (int, error) {
	if e.closed.Load() {
		return 0, net.ErrClosed
	}
	if e.p.v6 {
		return e.writeTo6(msg, dst)
	}
	if len(msg) < wire.ICMPv4HeaderLen || wire.ICMPv4Type(msg[0]) != wire.ICMPv4Echo || msg[1] != 0 {
		return 0, syscall.EINVAL
	}
	if len(msg) > maxMessage {
		return 0, syscall.EMSGSIZE
	}
	dst = dst.Unmap()
	if !dst.IsValid() {
		return 0, syscall.EDESTADDRREQ
	}
	if !dst.Is4() {
		return 0, syscall.EAFNOSUPPORT
	}
	var src netip.Addr
	if !e.local.IsUnspecified() {
		src = e.local
	}
	p := e.p
	r, err := p.net.Route(dst, src, 0)
	if errors.Is(err, proto.ErrNoRoute) {
		return 0, syscall.ENETUNREACH
	} else if err != nil {
		return 0, err
	}
	if (r.Broadcast || dst == netip.AddrFrom4([4]byte{255, 255, 255, 255})) && !e.broadcast.Load() {
		return 0, syscall.EACCES
	}
	pkt := buf.New(p.net.MaxHeaderLen(), len(msg))
	m := wire.ICMPv4(pkt.Bytes())
	copy(m, msg)
	binary.BigEndian.PutUint16(m[4:], e.id)
	m.UpdateChecksum()
	wp := proto.WriteParams{TTL: uint8(e.ttl.Load())}
	if err := p.net.WritePacket(r, wire.IPProtoICMP, wp, pkt); err != nil {
		return 0, err
	}
	p.stats.OutPackets.Inc()
	p.stats.OutBytes.Add(uint64(len(msg)))
	return len(msg), nil
}

// writeTo6 is WriteTo for ICMPv6 echo requests. dst may carry a zone
// (a link-local address's interface).
func (e *Endpoint) writeTo6(msg []byte, dst netip.Addr) (int, error) {
	if len(msg) < wire.ICMPv6HeaderLen || wire.ICMPv6Type(msg[0]) != wire.ICMPv6EchoRequest || msg[1] != 0 {
		return 0, syscall.EINVAL
	}
	if len(msg) > 65535 {
		return 0, syscall.EMSGSIZE
	}
	if !dst.IsValid() {
		return 0, syscall.EDESTADDRREQ
	}
	if !dst.Is6() || dst.Is4In6() {
		return 0, syscall.EAFNOSUPPORT
	}
	var src netip.Addr
	if !e.local.IsUnspecified() {
		src = e.local
	}
	p := e.p
	r, err := p.net.Route(dst, src, 0)
	if errors.Is(err, proto.ErrNoRoute) {
		return 0, syscall.ENETUNREACH
	} else if err != nil {
		return 0, err
	}
	pkt := buf.New(p.net.MaxHeaderLen(), len(msg))
	m := wire.ICMPv6(pkt.Bytes())
	copy(m, msg)
	binary.BigEndian.PutUint16(m[4:], e.id)
	m.UpdateChecksum(r.Src.WithZone(""), r.Dst.WithZone(""))
	wp := proto.WriteParams{TTL: uint8(e.ttl.Load())}
	if err := p.net.WritePacket(r, wire.IPProtoICMPv6, wp, pkt); err != nil {
		return 0, err
	}
	p.stats.OutPackets.Inc()
	p.stats.OutBytes.Add(uint64(len(msg)))
	return len(msg), nil
}

// Recv takes the oldest queued echo reply without blocking: the whole ICMP
// message and its sender. The caller owns pkt and must Release it.
func (e *Endpoint) Recv() (pkt *buf.Packet, from netip.Addr, ok bool) { return e.rx.Pop() }

// Err returns and clears the pending error (an *Error), if any.
func (e *Endpoint) Err() error { return e.rx.TakeErr() }

// Close releases the identifier and the queued replies. Readable receives a
// value. Closing twice does nothing.
func (e *Endpoint) Close() {
	p := e.p
	p.mu.Lock()
	if e.closed.Swap(true) {
		p.mu.Unlock()
		return
	}
	if s := slices.DeleteFunc(p.ids[e.id], func(o *Endpoint) bool { return o == e }); len(s) > 0 {
		p.ids[e.id] = s
	} else {
		delete(p.ids, e.id)
	}
	p.mu.Unlock()
	e.rx.Close()
}
