// Package udp is ustack's UDP (RFC 768, RFC 1122 §4.1): a transport
// protocol above the network layer. It owns UDP endpoints, the table that
// binds them to local and remote addresses and ports, ephemeral port
// selection (RFC 6056), checksums, the demultiplexing of received datagrams
// and their bounded per-endpoint receive queues, and the delivery of ICMP
// errors to connected endpoints.
//
// It does not block, keep goroutines or know about deadlines: the socket
// package builds net.PacketConn and net.Conn on top of an Endpoint's
// non-blocking Recv and its Readable channel. It does not route, fragment or
// build IP headers (proto.Network does), and it does not send ICMP port
// unreachable itself: HandlePacket returns proto.NoEndpoint and the network
// layer answers.
//
// Locking: one RWMutex guards the binding tables; receive takes it for
// reading only, so lookups never serialize on a write lock. Each endpoint
// has its own mutex for its state and its receive queue (rxq) another.
// Order: Protocol.mu, then Endpoint.mu, then the queue's.
package udp

import (
	"cmp"
	"crypto/rand"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"

	"ustack/internal/stats"
	"ustack/proto"
	"ustack/wire"
)

// Defaults of the tunables.
const (
	DefaultRecvSpace = 212992 // net.inet.udp.recvspace, as Linux's rmem_default
	DefaultPortFirst = 49152  // RFC 6335 §6 dynamic ports
	DefaultPortLast  = 65535
)

// Largest payloads: 65535 minus the IP and UDP headers.
const (
	maxPayload4 = 65535 - wire.IPv4MinHeaderLen - wire.UDPHeaderLen
	maxPayload6 = 65535 - 8 // IPv6 payload length excludes its header
)

// Protocol is the UDP transport of one stack. It implements
// proto.TransportProtocol.
type Protocol struct {
	net   proto.Network
	log   *slog.Logger
	stats proto.Counters

	sendChecksum        atomic.Bool
	recvSpace           atomic.Int64
	portFirst, portLast atomic.Int64

	mu sync.RWMutex
	// ports holds every endpoint by local port: for conflict checks,
	// broadcast delivery and listings.
	ports map[uint16][]*Endpoint
	// bound holds unconnected endpoints by local address (the unspecified
	// address for a wildcard bind; no zone) and port.
	bound map[netip.AddrPort][]*Endpoint
	// conn holds connected endpoints by their 4-tuple (see tupleOf).
	conn map[tuple][]*Endpoint
	// eph is the state of RFC 6056 port selection.
	eph ephemeral
}

// tuple identifies a connected endpoint. Its addresses carry no zone:
// received datagrams are matched by address alone, whatever name or index
// the application wrote as the zone of a link-local peer.
type tuple struct {
	local, remote netip.AddrPort
}

// tupleOf is the key of the local and remote addresses, zones stripped.
func tupleOf(local, remote netip.AddrPort) tuple {
	return tuple{unzone(local), unzone(remote)}
}

// unzone strips a's zone.
func unzone(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().WithZone(""), a.Port())
}

// New returns the UDP protocol sending through n. It registers its
// tunables in sys (if not nil): net.inet.udp.checksum,
// net.inet.udp.recvspace, net.inet.ip.portrange.first and .last. A nil log
// discards.
func New(n proto.Network, sys *proto.Sysctl, log *slog.Logger) *Protocol {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Protocol{
		net:   n,
		log:   log,
		ports: make(map[uint16][]*Endpoint),
		bound: make(map[netip.AddrPort][]*Endpoint),
		conn:  make(map[tuple][]*Endpoint),
	}
	p.sendChecksum.Store(true)
	p.recvSpace.Store(DefaultRecvSpace)
	p.portFirst.Store(DefaultPortFirst)
	p.portLast.Store(DefaultPortLast)
	if _, err := rand.Read(p.eph.secret[:]); err != nil {
		panic("udp: crypto/rand: " + err.Error())
	}
	if sys != nil {
		sys.Register(proto.BoolTunable("net.inet.udp.checksum",
			"compute checksums of sent IPv4 UDP datagrams (RFC 1122 §4.1.3.4)", &p.sendChecksum))
		sys.Register(proto.IntTunable("net.inet.udp.recvspace",
			"default receive buffer of UDP endpoints, bytes", &p.recvSpace, 1, 1<<30))
		sys.Register(proto.IntTunable("net.inet.ip.portrange.first",
			"lowest ephemeral port", &p.portFirst, 1, 65535))
		sys.Register(proto.IntTunable("net.inet.ip.portrange.last",
			"highest ephemeral port", &p.portLast, 1, 65535))
	}
	return p
}

// Protocol returns wire.IPProtoUDP.
func (p *Protocol) Protocol() wire.IPProtocol { return wire.IPProtoUDP }

// Stats returns the protocol's counters.
func (p *Protocol) Stats() *proto.Counters { return &p.stats }

// VisitStats reports the counters under "udp.".
func (p *Protocol) VisitStats(v stats.Visitor) { p.stats.Visit("udp.", v) }

// Sockets calls f for every endpoint, ordered by local port and address.
func (p *Protocol) Sockets(f func(proto.SocketInfo)) {
	p.mu.RLock()
	infos := make([]proto.SocketInfo, 0, len(p.ports))
	for _, eps := range p.ports {
		for _, e := range eps {
			infos = append(infos, e.info())
		}
	}
	p.mu.RUnlock()
	slices.SortFunc(infos, func(a, b proto.SocketInfo) int {
		if c := cmp.Compare(a.Local.Port(), b.Local.Port()); c != 0 {
			return c
		}
		if c := a.Local.Addr().Compare(b.Local.Addr()); c != 0 {
			return c
		}
		return a.Remote.Compare(b.Remote)
	})
	for _, in := range infos {
		f(in)
	}
}

// wildcard is the unspecified address of a's family (IPv4 for an invalid a).
func wildcard(a netip.Addr) netip.Addr {
	if a.Is6() && !a.Is4In6() {
		return netip.IPv6Unspecified()
	}
	return netip.IPv4Unspecified()
}

// isWildcard reports whether a binds to every local address.
func isWildcard(a netip.Addr) bool { return !a.IsValid() || a.IsUnspecified() }

// overlap reports whether two local addresses can receive the same
// datagram: equal, or either is the wildcard of the same family.
func overlap(a, b netip.Addr) bool {
	if a == b {
		return true
	}
	if a.Is4() != b.Is4() {
		return false
	}
	return a.IsUnspecified() || b.IsUnspecified()
}

// remove deletes e from s, keeping the order.
func remove(s []*Endpoint, e *Endpoint) []*Endpoint {
	if i := slices.Index(s, e); i >= 0 {
		s = slices.Delete(s, i, i+1)
	}
	return s
}
