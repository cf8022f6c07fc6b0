// Package arp is ARP for IPv4 over Ethernet (RFC 826), a network-layer
// protocol found by EtherType 0x0806.
//
// It owns the ARP input rules (RFC 826 merge, RFC 1122 §2.3.2, the
// address-conflict rules of RFC 5227), answering requests for the
// interface's own addresses, the requests the neighbour cache asks for
// (Resolver) and gratuitous announcements (RFC 5227 §3). It does not own
// the cache: the stack creates one neigh.Cache per interface and attaches
// it; entries, timers, retries and the packets waiting for resolution are
// the cache's. It does no proxy ARP and no address-conflict probing
// (RFC 5227 §2.1) of its own addresses.
//
// Receive path:
//
//	HandlePacket -> parse (wire.ParseARP) -> sanity checks (drops by reason)
//	  -> probe (sender 0.0.0.0)? answer if for us, never cache
//	  -> sender is one of our addresses? conflict: defend (RFC 5227 §2.4)
//	  -> merge sender into the cache (create it if we are the target)
//	  -> request for us? reply unicast to the sender
package arp

import (
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"ustack/buf"
	"ustack/internal/clock"
	"ustack/internal/stats"
	"ustack/network/neigh"
	"ustack/proto"
	"ustack/wire"
)

// RFC 5227 §1.1 constants.
const (
	// AnnounceInterval is the time between the two announcements
	// (ANNOUNCE_INTERVAL).
	AnnounceInterval = 2 * time.Second
	// AnnounceNum is the number of announcements sent (ANNOUNCE_NUM).
	AnnounceNum = 2
	// DefendInterval is the minimum time between two defensive
	// announcements of one address (DEFEND_INTERVAL).
	DefendInterval = 10 * time.Second
)

// Protocol is ARP for the stack's Ethernet interfaces. It implements
// proto.NetworkProtocol. It is safe for concurrent use.
type Protocol struct {
	ifs proto.Interfaces
	log *slog.Logger

	ctr proto.Counters
	st  struct {
		requestsIn, repliesIn, probesIn      stats.Counter
		requestsOut, repliesOut, announceOut stats.Counter
		conflicts                            stats.Counter
	}

	mu  sync.Mutex
	att map[int]*attachment // by interface index
}

// attachment is an interface ARP runs on. Its maps are guarded by
// Protocol.mu.
type attachment struct {
	ifc      proto.Interface
	cache    *neigh.Cache
	pending  map[*pendingAnnounce]struct{}
	defended map[netip.Addr]time.Time // last defence per address
}

type pendingAnnounce struct{ t clock.Timer }

// New returns ARP for the interfaces in ifs. A nil log discards.
func New(ifs proto.Interfaces, log *slog.Logger) *Protocol {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Protocol{ifs: ifs, log: log, att: make(map[int]*attachment)}
}

// EtherType is wire.EtherTypeARP.
func (p *Protocol) EtherType() wire.EtherType { return wire.EtherTypeARP }

// Counters are ARP's packet counters (in: every ARP packet handed to
// HandlePacket; out: every packet sent; drops by reason).
func (p *Protocol) Counters() *proto.Counters { return &p.ctr }

// VisitStats reports the counters under "arp.": the proto.Counters, plus
// in.requests, in.replies, in.probes, out.requests, out.replies,
// out.announcements and conflicts.
func (p *Protocol) VisitStats(v stats.Visitor) {
	p.ctr.Visit("arp.", v)
	v("arp.in.requests", p.st.requestsIn.Load())
	v("arp.in.replies", p.st.repliesIn.Load())
	v("arp.in.probes", p.st.probesIn.Load())
	v("arp.out.requests", p.st.requestsOut.Load())
	v("arp.out.replies", p.st.repliesOut.Load())
	v("arp.out.announcements", p.st.announceOut.Load())
	v("arp.conflicts", p.st.conflicts.Load())
}

// Attach runs ARP on ifc with cache as its neighbour cache (which the stack
// creates with p.Resolver(ifc) as its resolver). Attaching an index again
// replaces the earlier attachment.
func (p *Protocol) Attach(ifc proto.Interface, cache *neigh.Cache) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if old := p.att[ifc.Index()]; old != nil {
		old.stop()
	}
	p.att[ifc.Index()] = &attachment{
		ifc:      ifc,
		cache:    cache,
		pending:  make(map[*pendingAnnounce]struct{}),
		defended: make(map[netip.Addr]time.Time),
	}
}

// Detach stops ARP on the interface: its packets are dropped and pending
// announcements cancelled. The cache stays the stack's to close.
func (p *Protocol) Detach(ifIndex int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if a := p.att[ifIndex]; a != nil {
		a.stop()
		delete(p.att, ifIndex)
	}
}

// stop cancels pending announcements. Called with p.mu held.
func (a *attachment) stop() {
	for pa := range a.pending {
		pa.t.Stop()
		delete(a.pending, pa)
	}
}

func (p *Protocol) attached(ifIndex int) *attachment {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.att[ifIndex]
}

// HandlePacket processes one received ARP packet. It takes ownership of pkt,
// whose front is the ARP packet (the Ethernet header is in pkt.LinkHeader).
func (p *Protocol) HandlePacket(ifc proto.Interface, pkt *buf.Packet) {
	defer pkt.Release()
	p.ctr.InPackets.Inc()
	p.ctr.InBytes.Add(uint64(pkt.Len()))
	if r := p.input(ifc, pkt); r != proto.DropNone {
		p.ctr.Drop(r)
		return
	}
	p.ctr.Delivered.Inc()
}

// input applies the receive rules and returns why pkt was dropped, or
// DropNone.
func (p *Protocol) input(ifc proto.Interface, pkt *buf.Packet) proto.DropReason {
	n := min(pkt.Len(), wire.ARPLen) // Ethernet pads short frames: ignore the tail
	a, err := wire.ParseARP(pkt.Pullup(n))
	if err != nil {
		return parseDrop(err)
	}
	op := a.Op()
	if op != wire.ARPRequest && op != wire.ARPReply {
		return proto.DropUnsupported // RARP, InARP, ...
	}
	if pkt.Flags&(buf.FlagLinkOtherHost|buf.FlagLoopback) != 0 {
		return proto.DropNotForUs
	}
	at := p.attached(ifc.Index())
	if at == nil || !ifc.Up() {
		return proto.DropInterfaceDown
	}
	sha, sip, tip := a.SenderMAC(), a.SenderIP(), a.TargetIP()
	// Our own frames coming back, and senders that can't be neighbours:
	// a group or zero hardware address, a group or loopback protocol
	// address (RFC 1122 §3.2.1.3 forbids them as sources).
	if sha == ifc.HardwareAddr() || sha.IsMulticast() || sha.IsZero() {
		return proto.DropBadSource
	}
	if sip.IsMulticast() || sip.IsLoopback() || sip == limitedBroadcast ||
		(!sip.IsUnspecified() && p.ifs != nil && p.ifs.Broadcast(ifc.Index(), sip)) {
		return proto.DropBadSource
	}
	if tip.IsMulticast() || tip.IsLoopback() || tip.IsUnspecified() {
		return proto.DropMalformed
	}
	forUs := hasAddr(ifc, tip)

	if sip.IsUnspecified() {
		// RFC 5227 §2.1.1: an ARP probe from a host checking whether
		// tip is free. Never cache it; answer as usual if tip is ours,
		// so the prober sees the conflict.
		p.st.probesIn.Inc()
		if op == wire.ARPRequest && forUs {
			p.reply(ifc, tip, sha, sip)
		}
		return proto.DropNone
	}
	if hasAddr(ifc, sip) {
		// Someone else claims one of our addresses.
		p.conflict(at, sip, sha)
		return proto.DropNone
	}
	if op == wire.ARPRequest {
		p.st.requestsIn.Inc()
	} else {
		p.st.repliesIn.Inc()
	}

	// RFC 826 merge: update the sender's entry if there is one; if we
	// are the target, create it. A reply to us confirms reachability
	// (it answers our request) unless it came as a link broadcast.
	f := neigh.UpdateFlags{Override: true}
	if forUs {
		f.Create = true
		f.Solicited = op == wire.ARPReply && pkt.Flags&buf.FlagLinkBroadcast == 0
	}
	at.cache.Update(sip, sha, f)

	if op == wire.ARPRequest && forUs {
		p.reply(ifc, tip, sha, sip)
	}
	return proto.DropNone
}

var limitedBroadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

func parseDrop(err error) proto.DropReason {
	switch {
	case errors.Is(err, wire.ErrTruncated):
		return proto.DropTruncated
	case errors.Is(err, wire.ErrUnsupported):
		return proto.DropUnsupported
	case errors.Is(err, wire.ErrBadLength):
		return proto.DropBadLength
	}
	return proto.DropMalformed
}

// hasAddr reports whether a is one of ifc's addresses. Only the receiving
// interface's addresses count: no proxy ARP.
func hasAddr(ifc proto.Interface, a netip.Addr) bool {
	for _, pfx := range ifc.Addrs() {
		if pfx.Addr().Unmap() == a {
			return true
		}
	}
	return false
}

// reply answers a request for our address ours from (sha, sip), unicast to
// sha (RFC 826: swap the fields, fill in our hardware address).
func (p *Protocol) reply(ifc proto.Interface, ours netip.Addr, sha wire.MAC, sip netip.Addr) {
	p.st.repliesOut.Inc()
	p.send(ifc, sha, &wire.ARPFields{
		Op:        wire.ARPReply,
		SenderMAC: ifc.HardwareAddr(),
		SenderIP:  ours,
		TargetMAC: sha,
		TargetIP:  sip,
	})
}

// send encodes f and writes it to the link address dst.
func (p *Protocol) send(ifc proto.Interface, dst wire.MAC, f *wire.ARPFields) {
	pkt := buf.New(buf.DefaultHeadroom, wire.ARPLen)
	f.Encode(pkt.Bytes())
	pkt.IfIndex = ifc.Index()
	p.ctr.OutPackets.Inc()
	p.ctr.OutBytes.Add(wire.ARPLen)
	if err := ifc.OutputLink(dst, wire.EtherTypeARP, pkt); err != nil {
		p.ctr.Drop(proto.DropLinkError)
	}
}

// conflict handles an ARP packet from another host claiming addr, one of
// ours (RFC 5227 §2.4): the entry is not cached, and we defend the address
// with one announcement unless we did so within DefendInterval (§2.4 (b)).
func (p *Protocol) conflict(at *attachment, addr netip.Addr, sha wire.MAC) {
	p.st.conflicts.Inc()
	now := at.cache.Clock().Now()
	p.mu.Lock()
	last, seen := at.defended[addr]
	defend := !seen || now.Sub(last) >= DefendInterval
	if defend {
		at.defended[addr] = now
	}
	p.mu.Unlock()
	if !defend {
		return
	}
	p.log.Warn("arp: address conflict", "interface", at.ifc.Name(), "addr", addr, "other", sha)
	p.announce(at.ifc, addr)
}

// Announce sends gratuitous ARP for addr, one of ifc's IPv4 addresses: an
// RFC 5227 §3 announcement (a broadcast request with sender and target IP
// both addr), now and, if ifc is attached, once more AnnounceInterval later
// on the cache's clock (while addr is still ifc's and ifc is up).
func (p *Protocol) Announce(ifc proto.Interface, addr netip.Addr) {
	addr = addr.Unmap()
	if !addr.Is4() {
		return
	}
	p.announce(ifc, addr)

	p.mu.Lock()
	defer p.mu.Unlock()
	at := p.att[ifc.Index()]
	if at == nil {
		return
	}
	pa := &pendingAnnounce{}
	// The callback takes p.mu, so it can't see pa before t is set.
	pa.t = at.cache.Clock().AfterFunc(AnnounceInterval, func() {
		p.mu.Lock()
		_, live := at.pending[pa]
		delete(at.pending, pa)
		live = live && p.att[ifc.Index()] == at
		p.mu.Unlock()
		if live && ifc.Up() && hasAddr(ifc, addr) {
			p.announce(ifc, addr)
		}
	})
	at.pending[pa] = struct{}{}
}

func (p *Protocol) announce(ifc proto.Interface, addr netip.Addr) {
	p.st.announceOut.Inc()
	p.send(ifc, wire.BroadcastMAC, &wire.ARPFields{
		Op:        wire.ARPRequest,
		SenderMAC: ifc.HardwareAddr(),
		SenderIP:  addr,
		TargetIP:  addr, // target MAC zero (RFC 5227 §2.1.1)
	})
}

// Resolver returns the neigh.Resolver that sends ARP requests out ifc: for
// target, broadcast (or unicast to dst for reachability probes), with the
// target hardware address zero and as sender IP an address of ifc in
// target's subnet (the most specific one), else ifc's first IPv4 address. An interface with no
// IPv4 address sends nothing (counted as a bad_source drop): a request
// from 0.0.0.0 would be a probe, which nobody caches.
func (p *Protocol) Resolver(ifc proto.Interface) neigh.Resolver {
	return resolver{p, ifc}
}

type resolver struct {
	p   *Protocol
	ifc proto.Interface
}

func (r resolver) Solicit(target netip.Addr, dst wire.MAC) {
	target = target.Unmap()
	if !target.Is4() {
		return
	}
	src, ok := sourceFor(r.ifc, target)
	if !ok {
		r.p.ctr.Drop(proto.DropBadSource)
		return
	}
	if dst.IsZero() {
		dst = wire.BroadcastMAC
	}
	r.p.st.requestsOut.Inc()
	r.p.send(r.ifc, dst, &wire.ARPFields{
		Op:        wire.ARPRequest,
		SenderMAC: r.ifc.HardwareAddr(),
		SenderIP:  src,
		TargetIP:  target,
	})
}

// sourceFor picks the sender IP of a request for target: the address of
// ifc whose prefix holds target most specifically, else ifc's first IPv4
// address.
func sourceFor(ifc proto.Interface, target netip.Addr) (netip.Addr, bool) {
	var first, best netip.Addr
	bits := -1
	for _, pfx := range ifc.Addrs() {
		a := pfx.Addr().Unmap()
		if !a.Is4() {
			continue
		}
		if !first.IsValid() {
			first = a
		}
		if pfx.Contains(target) && pfx.Bits() > bits {
			best, bits = a, pfx.Bits()
		}
	}
	if best.IsValid() {
		return best, true
	}
	return first, first.IsValid()
}

var _ proto.NetworkProtocol = (*Protocol)(nil)
