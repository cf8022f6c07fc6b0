// Package ipv4 is ustack's IPv4 network layer with ICMPv4: input validation
// (RFC 791, RFC 1122 §3.2.1), options, delivery to transports, broadcast and
// multicast delivery, forwarding between interfaces (RFC 1812 §5), output
// with source address selection and fragmentation, reassembly with a timeout
// and a memory cap, and ICMP echo and errors with rate limits (RFC 792,
// RFC 1812 §4.3).
//
// Receive:  link → stack (Ethernet demux) → HandlePacket → validate →
//
//	local?  → reassemble → transport.HandlePacket (→ port unreachable)
//	else    → forward (TTL, route, fragment) → Interface.Output
//
// Send:     transport → Route → WritePacket → header → fragment → Interface.Output
//
// It does no I/O of its own: it sends through proto.Interface and learns
// interfaces and addresses through proto.Interfaces. Neighbour resolution,
// framing and link writes belong to the stack's interfaces.
package ipv4

import (
	"crypto/rand"
	"encoding/binary"
	"log/slog"
	"sync/atomic"
	"time"

	"ustack/internal/clock"
	"ustack/internal/stats"
	"ustack/network/route"
	"ustack/proto"
	"ustack/wire"
)

// Defaults of the tunables.
const (
	DefaultTTL              = 64
	DefaultReassemblyTime   = 30 * time.Second // Linux ipfrag_time
	DefaultReassemblyMemory = 4 << 20          // Linux ipfrag_high_thresh
	DefaultICMPRate         = 1000             // error messages per second (Linux icmp_msgs_per_sec)
	DefaultICMPBurst        = 50
)

// Protocol is the IPv4 protocol of one stack. It implements
// proto.NetworkProtocol for EtherType IPv4 and proto.Network for IPv4
// destinations.
type Protocol struct {
	ifs    proto.Interfaces
	routes *route.Table
	clk    clock.Clock
	log    *slog.Logger

	transports [256]proto.TransportProtocol

	// Tunables.
	forwarding   atomic.Bool
	ttl          atomic.Int64
	bmcastEcho   atomic.Bool
	reasmTime    atomic.Int64
	reasmMemory  atomic.Int64
	icmpRate     atomic.Int64
	icmpBurst    atomic.Int64
	acceptSrcRte atomic.Bool

	nextID atomic.Uint32

	counters  proto.Counters // ipv4.*
	forwarded stats.Counter
	fragsOut  stats.Counter
	fragsIn   stats.Counter
	reasmOK   stats.Counter
	ttlZero   stats.Counter

	icmp   icmpState
	reasm  *reassembler
	groups groups
}

// New creates the IPv4 protocol of a stack and registers its tunables.
func New(ifs proto.Interfaces, routes *route.Table, clk clock.Clock, sys *proto.Sysctl, log *slog.Logger) *Protocol {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Protocol{ifs: ifs, routes: routes, clk: clk, log: log}
	p.ttl.Store(DefaultTTL)
	p.reasmTime.Store(int64(DefaultReassemblyTime))
	p.reasmMemory.Store(DefaultReassemblyMemory)
	p.icmpRate.Store(DefaultICMPRate)
	p.icmpBurst.Store(DefaultICMPBurst)
	var seed [4]byte
	rand.Read(seed[:])
	p.nextID.Store(binary.BigEndian.Uint32(seed[:]))
	p.icmp.init(p)
	p.reasm = newReassembler(p)
	if sys != nil {
		sys.Register(proto.BoolTunable("net.inet.ip.forwarding", "forward IPv4 packets between interfaces", &p.forwarding))
		sys.Register(proto.IntTunable("net.inet.ip.ttl", "default TTL of sent packets", &p.ttl, 1, 255))
		sys.Register(proto.BoolTunable("net.inet.ip.accept_sourceroute", "accept packets with source-route options", &p.acceptSrcRte))
		sys.Register(proto.DurationTunable("net.inet.ip.reass_timeout", "how long fragments wait for the rest of their datagram", &p.reasmTime, time.Second, 5*time.Minute))
		sys.Register(proto.IntTunable("net.inet.ip.reass_maxmem", "bytes of fragments held for reassembly at most", &p.reasmMemory, 0, 1<<30))
		sys.Register(proto.BoolTunable("net.inet.icmp.bmcastecho", "answer echo requests sent to broadcast or multicast addresses", &p.bmcastEcho))
		sys.Register(proto.IntTunable("net.inet.icmp.ratelimit", "ICMP error messages per second at most (0: unlimited)", &p.icmpRate, 0, 1<<20))
		sys.Register(proto.IntTunable("net.inet.icmp.ratelimit_burst", "ICMP error messages sent back to back at most", &p.icmpBurst, 1, 1<<20))
	}
	return p
}

// EtherType is IPv4.
func (p *Protocol) EtherType() wire.EtherType { return wire.EtherTypeIPv4 }

// RegisterTransport makes t receive packets of its protocol number. The
// stack calls it while it is built, before any packet flows.
func (p *Protocol) RegisterTransport(t proto.TransportProtocol) {
	p.transports[t.Protocol()] = t
}

// Counters are the IPv4 counters (ICMP has its own: ICMPCounters).
func (p *Protocol) Counters() *proto.Counters { return &p.counters }

// ICMPCounters are the ICMPv4 counters.
func (p *Protocol) ICMPCounters() *proto.Counters { return &p.icmp.counters }

// VisitStats lists the IPv4 and ICMPv4 counters.
func (p *Protocol) VisitStats(v stats.Visitor) {
	p.counters.Visit("ipv4.", v)
	v("ipv4.forwarded", p.forwarded.Load())
	v("ipv4.frag.out", p.fragsOut.Load())
	v("ipv4.frag.in", p.fragsIn.Load())
	v("ipv4.reasm.ok", p.reasmOK.Load())
	v("ipv4.reasm.pending", uint64(p.reasm.pending()))
	v("ipv4.reasm.bytes", uint64(p.reasm.bytes()))
	v("ipv4.in.ttl_zero", p.ttlZero.Load())
	p.icmp.visit(v)
}

// Forwarding reports whether forwarding is on.
func (p *Protocol) Forwarding() bool { return p.forwarding.Load() }

// Close stops timers and releases held fragments.
func (p *Protocol) Close() { p.reasm.close() }

func (p *Protocol) newID() uint16 { return uint16(p.nextID.Add(1)) }
