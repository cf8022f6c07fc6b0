// Package ipv6 is ustack's IPv6 network layer with ICMPv6 (network layer,
// beside network/ipv4): input validation (RFC 8200 §3), extension headers
// (RFC 8200 §4: hop-by-hop first only, options by their action bits,
// routing type 0 refused per RFC 5095, a limit on the chain's length),
// reassembly (RFC 8200 §4.5) with a timeout and a memory cap, overlapping
// fragments dropping the whole datagram (RFC 5722), atomic fragments on
// their own (RFC 6946) and whole header chains in first fragments
// (RFC 7112); delivery to transports; forwarding (RFC 8200 §3, RFC 4443
// §3); output with source address selection, a path MTU cache (RFC 8201)
// and fragmentation; and ICMPv6 echo and errors with a rate limit
// (RFC 4443).
//
// Receive:  link → stack (Ethernet demux) → HandlePacket → validate →
//
//	local?  → extension headers → (fragment? reassemble, walk again)
//	        → ICMPv6: echo | errors → transport | ND/MLD → NDHandler
//	        → transport.HandlePacket (→ port unreachable)
//	else    → forward (hop limit, route, packet too big) → Interface.Output
//
// Send:     transport → Route → WritePacket → header → fragment → Interface.Output
//
// It does no I/O of its own: it sends through proto.Interface and learns
// interfaces and addresses through proto.Interfaces. Neighbour discovery,
// router discovery, address configuration and MLD are not here: ICMPv6
// types 130-137 and 143 go to an NDHandler (network/ndp) that imports this
// package. Neighbour resolution, framing and link writes belong to the
// stack's interfaces.
package ipv6

import (
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"ustack/buf"
	"ustack/internal/clock"
	"ustack/internal/stats"
	"ustack/network/route"
	"ustack/proto"
	"ustack/wire"
)

// Defaults of the tunables.
const (
	DefaultHopLimit         = 64               // RFC 8200 §3 leaves it open; as Linux and the BSDs
	DefaultReassemblyTime   = 60 * time.Second // RFC 8200 §4.5
	DefaultReassemblyMemory = 4 << 20          // Linux ip6frag_high_thresh
	// DefaultMaxExtHeaders is the longest extension header chain accepted.
	// RFC 8200 §4.1 orders at most six headers before the upper layer
	// (hop-by-hop, destination options, routing, fragment, AH, destination
	// options) and allows each once, destination options twice; 8 leaves
	// room for one unusual repeat and still stops chains built to exhaust
	// the receiver (RFC 8883 §1, RFC 9098).
	DefaultMaxExtHeaders = 8
	DefaultICMPRate      = 1000 // error messages per second, as ipv4
	DefaultICMPBurst     = 50
	// DefaultPMTUExpire is how long a lowered path MTU holds before the
	// interface MTU is tried again (RFC 8201 §4: at least 5 minutes,
	// 10 recommended).
	DefaultPMTUExpire = 10 * time.Minute
)

// NDHandler receives the ICMPv6 messages of neighbour discovery
// (RFC 4861: router solicitation and advertisement, neighbour
// solicitation and advertisement, redirect) and MLD (RFC 2710, RFC 3810:
// query, reports, done).
type NDHandler interface {
	// HandleND takes ownership of pkt, whose front is the ICMPv6 message
	// (contiguous, checksum verified). info.TTL is the hop limit.
	HandleND(ifc proto.Interface, info proto.PacketInfo, pkt *buf.Packet)
}

// GroupObserver is implemented by an NDHandler that wants to hear when a
// multicast group is joined on an interface for the first time or left
// for the last time (to send MLD reports). ifIndex 0 means every
// interface. It is called without locks held.
type GroupObserver interface {
	GroupChanged(ifIndex int, group netip.Addr, joined bool)
}

// Protocol is the IPv6 protocol of one stack. It implements
// proto.NetworkProtocol for EtherType IPv6 and proto.Network for IPv6
// destinations.
type Protocol struct {
	ifs    proto.Interfaces
	routes *route.Table
	clk    clock.Clock
	log    *slog.Logger

	transports [256]proto.TransportProtocol
	nd         atomic.Pointer[ndBox]
	selector   atomic.Pointer[SourceSelector]
	addrState  addrStates // per-address state for source selection (source.go)

	// Tunables.
	forwarding  atomic.Bool
	hopLimit    atomic.Int64
	reasmTime   atomic.Int64
	reasmMemory atomic.Int64
	maxExt      atomic.Int64
	pmtuExpire  atomic.Int64
	icmpRate    atomic.Int64
	icmpBurst   atomic.Int64
	mcastEcho   atomic.Bool

	counters    proto.Counters // ipv6.*
	forwarded   stats.Counter
	fragsOut    stats.Counter
	fragsIn     stats.Counter
	reasmOK     stats.Counter
	atomicFrags stats.Counter
	extLimit    stats.Counter // chains over max_ext_headers
	rhRefused   stats.Counter // routing headers with segments left
	tinyFirst   stats.Counter // first fragments without the whole chain (RFC 7112)
	noNext      stats.Counter
	hlimZero    stats.Counter

	icmp   icmpState
	reasm  *reassembler
	groups groups
	pmtu   pmtuCache
	ifconf ifConfs // per-interface MTU and hop limit (ifconf.go)
}

type ndBox struct{ h NDHandler }

// New creates the IPv6 protocol of a stack and registers its tunables
// (net.inet6.ip6.*, net.inet6.icmp6.*) in sys, which may be nil.
func New(ifs proto.Interfaces, routes *route.Table, clk clock.Clock, sys *proto.Sysctl, log *slog.Logger) *Protocol {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Protocol{ifs: ifs, routes: routes, clk: clk, log: log}
	p.hopLimit.Store(DefaultHopLimit)
	p.reasmTime.Store(int64(DefaultReassemblyTime))
	p.reasmMemory.Store(DefaultReassemblyMemory)
	p.maxExt.Store(DefaultMaxExtHeaders)
	p.pmtuExpire.Store(int64(DefaultPMTUExpire))
	p.icmpRate.Store(DefaultICMPRate)
	p.icmpBurst.Store(DefaultICMPBurst)
	// RFC 4443 §4.1: an echo reply SHOULD be sent to a request sent to a
	// multicast address.
	p.mcastEcho.Store(true)
	p.icmp.init(p)
	p.reasm = newReassembler(p)
	if sys != nil {
		sys.Register(proto.BoolTunable("net.inet6.ip6.forwarding", "forward IPv6 packets between interfaces", &p.forwarding))
		sys.Register(proto.IntTunable("net.inet6.ip6.hlim", "default hop limit of sent packets", &p.hopLimit, 1, 255))
		sys.Register(proto.DurationTunable("net.inet6.ip6.reass_timeout", "how long fragments wait for the rest of their packet", &p.reasmTime, time.Second, 5*time.Minute))
		sys.Register(proto.IntTunable("net.inet6.ip6.reass_maxmem", "bytes of fragments held for reassembly at most", &p.reasmMemory, 0, 1<<30))
		sys.Register(proto.IntTunable("net.inet6.ip6.max_ext_headers", "extension headers in one packet at most; longer chains are dropped", &p.maxExt, 1, 64))
		sys.Register(proto.DurationTunable("net.inet6.ip6.pmtu_expire", "how long a path MTU learned from packet too big holds", &p.pmtuExpire, 5*time.Minute, 24*time.Hour))
		sys.Register(proto.IntTunable("net.inet6.icmp6.ratelimit", "ICMPv6 error messages per second at most (0: unlimited)", &p.icmpRate, 0, 1<<20))
		sys.Register(proto.IntTunable("net.inet6.icmp6.ratelimit_burst", "ICMPv6 error messages sent back to back at most", &p.icmpBurst, 1, 1<<20))
		sys.Register(proto.BoolTunable("net.inet6.icmp6.echo_multicast", "answer echo requests sent to multicast addresses", &p.mcastEcho))
	}
	return p
}

// EtherType is IPv6.
func (p *Protocol) EtherType() wire.EtherType { return wire.EtherTypeIPv6 }

// RegisterTransport makes t receive packets of its protocol number. The
// stack calls it while it is built, before any packet flows. A transport
// for wire.IPProtoICMPv6 (ping sockets) receives echo replies, unknown
// informational messages, and errors about the echo requests it sent.
func (p *Protocol) RegisterTransport(t proto.TransportProtocol) {
	p.transports[t.Protocol()] = t
}

// SetNDHandler makes h receive neighbour discovery and MLD messages
// (ICMPv6 types 130-137 and 143). Without one they are dropped and
// counted. If h implements GroupObserver it also hears group changes.
func (p *Protocol) SetNDHandler(h NDHandler) {
	if h == nil {
		p.nd.Store(nil)
		return
	}
	p.nd.Store(&ndBox{h})
}

func (p *Protocol) ndHandler() NDHandler {
	if b := p.nd.Load(); b != nil {
		return b.h
	}
	return nil
}

// Counters are the IPv6 counters (ICMPv6 has its own: ICMPCounters).
func (p *Protocol) Counters() *proto.Counters { return &p.counters }

// ICMPCounters are the ICMPv6 counters.
func (p *Protocol) ICMPCounters() *proto.Counters { return &p.icmp.counters }

// VisitStats lists the IPv6 and ICMPv6 counters.
func (p *Protocol) VisitStats(v stats.Visitor) {
	p.counters.Visit("ipv6.", v)
	v("ipv6.forwarded", p.forwarded.Load())
	v("ipv6.frag.out", p.fragsOut.Load())
	v("ipv6.frag.in", p.fragsIn.Load())
	v("ipv6.frag.atomic", p.atomicFrags.Load())
	v("ipv6.reasm.ok", p.reasmOK.Load())
	v("ipv6.reasm.pending", uint64(p.reasm.pending()))
	v("ipv6.reasm.bytes", uint64(p.reasm.bytes()))
	v("ipv6.in.ext_limit", p.extLimit.Load())
	v("ipv6.in.rh_refused", p.rhRefused.Load())
	v("ipv6.in.frag_incomplete_chain", p.tinyFirst.Load())
	v("ipv6.in.no_next_header", p.noNext.Load())
	v("ipv6.in.hlim_zero", p.hlimZero.Load())
	v("ipv6.pmtu.entries", uint64(p.pmtu.len()))
	p.icmp.visit(v)
}

// Forwarding reports whether forwarding is on.
func (p *Protocol) Forwarding() bool { return p.forwarding.Load() }

// Close stops timers and releases held fragments.
func (p *Protocol) Close() { p.reasm.close() }

// drop counts and releases pkt.
func (p *Protocol) drop(pkt *buf.Packet, r proto.DropReason) {
	p.counters.Drop(r)
	pkt.Release()
}
