// Package ndp is IPv6 Neighbor Discovery for ustack's Ethernet interfaces:
// the IPv6 counterpart of network/arp, in the network layer above
// network/ipv6 (which hands it ICMPv6 types 130-137 and 143, and sends for
// it).
//
// It owns:
//   - neighbour solicitations and advertisements (RFC 4861 §7): answering
//     for our addresses, feeding the shared neigh.Cache (which runs NUD:
//     INCOMPLETE, REACHABLE, STALE, DELAY, PROBE) and soliciting for it
//     (Resolver);
//   - router discovery (RFC 4861 §6.3): router solicitations, router
//     advertisements, the default router and on-link prefix lists (as
//     routes, through Host), link MTU, hop limit, ReachableTime and
//     RetransTimer;
//   - redirects (RFC 4861 §8.3), as host routes;
//   - address configuration (RFC 4862): the link-local address from the
//     MAC, SLAAC addresses from advertised prefixes with their preferred
//     and valid lifetimes, and duplicate address detection for every
//     address, static ones included; addresses are handed to the stack
//     (Host.AddAddress) only once DAD has passed;
//   - MLDv2 listener reports (RFC 3810 §6) for the solicited-node group of
//     every address and the groups sockets join, so that snooping switches
//     deliver them.
//
// It does not own the neighbour cache (the stack makes one per interface
// and attaches it), the routing table, the interface's address list or
// the IPv6 header: the stack does those for it through Host, and
// network/ipv6 writes the packets (Sender). For a stack that forwards it
// is also the router side of router discovery (RFC 4861 §6.2, advert.go):
// router advertisements on the interfaces told to Advertise, answers to
// router solicitations, a final advertisement when advertising stops.
// Not done:
// DHCPv6 (the M and O flags are recorded only), RFC 4191 route
// information, RFC 8106 DNS options, privacy addresses (RFC 8981), the DAD
// nonce (RFC 7527), proxy ND, MLD source filtering (every group is
// joined for all sources: EXCLUDE {}).
//
// It keeps no goroutine: timers run on the clock of the interface's
// neighbour cache. Work that leaves the package (Host calls, sends, cache
// updates) is decided under the Protocol's lock and run, in the order
// decided, once the lock is released.
//
// Receive path (HandleND, from network/ipv6 with the checksum verified):
//
//	ICMPv6 type -> parse (wire, options validated: length 0 drops)
//	  -> RFC 4861 validity checks (hop limit 255, code 0, addresses)
//	  -> NS: DAD conflict? else cache update, NA back
//	  -> NA: DAD conflict? else cache update (§7.2.5)
//	  -> RA: routers, prefixes, SLAAC, parameters
//	  -> redirect: from the first-hop router only: host route
//	  -> MLD query: schedule reports
package ndp

import (
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"ustack/buf"
	"ustack/internal/clock"
	"ustack/internal/stats"
	"ustack/network/neigh"
	"ustack/network/route"
	"ustack/proto"
	"ustack/wire"
)

// Protocol constants (RFC 4861 §10, RFC 4862 §5.1, RFC 3810 §9).
const (
	// MaxRtrSolicitationDelay bounds the random delay before an interface
	// first speaks (MAX_RTR_SOLICITATION_DELAY).
	MaxRtrSolicitationDelay = time.Second
	// RtrSolicitationInterval is the time between router solicitations
	// (RTR_SOLICITATION_INTERVAL).
	RtrSolicitationInterval = 4 * time.Second
	// MaxRtrSolicitations is the number of router solicitations sent
	// (MAX_RTR_SOLICITATIONS).
	MaxRtrSolicitations = 3
	// DupAddrDetectTransmits is the default number of DAD solicitations.
	DupAddrDetectTransmits = 1
	// RouteMetric is the metric of routes learned from router
	// advertisements.
	RouteMetric = 1024
	// RedirectLifetime is how long a redirect's host route is kept (RFC
	// 4861 leaves it to the implementation).
	RedirectLifetime = 10 * time.Minute
	// MLDRobustness is the MLD Robustness Variable: how many times a
	// state-change report is sent.
	MLDRobustness = 2
	// MLDUnsolicitedReportInterval bounds the random delay between the
	// retransmissions of a state-change report.
	MLDUnsolicitedReportInterval = time.Second
	// twoHours is the floor of RFC 4862 §5.5.3 (e).
	twoHours = 2 * time.Hour
)

// Sender writes IPv6 packets for ndp: network/ipv6's Protocol implements
// it.
type Sender interface {
	// Route resolves how to send to dst (src and ifIndex may be zero); ndp
	// uses it only to find the current first hop for a redirect's
	// destination (RFC 4861 §8.1).
	Route(dst, src netip.Addr, ifIndex int) (proto.Route, error)
	// WritePacket prepends the IPv6 header and sends pkt along r, which
	// ndp fills in itself (link-local scope: NextHop is Dst, Src may be
	// the unspecified address for DAD). p is wire.IPProtoICMPv6, or
	// wire.IPProtoHopByHop when pkt starts with a hop-by-hop header (MLD's
	// router alert). The hop limit is in wp.TTL. It takes ownership of
	// pkt.
	WritePacket(r proto.Route, p wire.IPProtocol, wp proto.WriteParams, pkt *buf.Packet) error
}

// Host is what the stack does on ndp's behalf for one interface. ndp
// calls it without holding its own lock, in the order it made its
// decisions; the stack must not call into the Protocol while holding a
// lock its Host methods take.
type Host interface {
	// AddAddress assigns p (an address with its prefix length, DAD done)
	// to the interface. prefixRoute: also add the connected route for p's
	// prefix (link-local and static addresses); SLAAC addresses get false,
	// their prefix is on-link only if advertised so (RFC 5942), and then
	// comes as a route of its own.
	AddAddress(ifIndex int, p netip.Prefix, prefixRoute bool) error
	// RemoveAddress removes an address ndp assigned (its valid lifetime
	// ran out), with its connected route if it had one.
	RemoveAddress(ifIndex int, a netip.Addr) error
	// SetDeprecated marks an assigned address deprecated or preferred
	// again (RFC 4862 §5.5.4): a deprecated address stays for existing
	// connections but is not chosen as a source for new ones (RFC 6724
	// rule 3).
	SetDeprecated(ifIndex int, a netip.Addr, deprecated bool)
	// AddRoute and DeleteRoute change the routing table: default routes
	// via routers and on-link prefixes (route.OriginRA), host routes from
	// redirects (route.OriginRedirect).
	AddRoute(r route.Route) error
	DeleteRoute(r route.Route) error
	// SetMTU sets the interface's IPv6 MTU from a router advertisement
	// (at least 1280; the stack refuses more than the link's).
	SetMTU(ifIndex int, mtu int) error
	// SetHopLimit sets the default hop limit of packets sent out the
	// interface (a router advertisement's Cur Hop Limit).
	SetHopLimit(ifIndex int, hopLimit uint8)
	// JoinGroup and LeaveGroup make the IP layer accept (or stop
	// accepting) packets sent to a multicast group on the interface: ndp
	// joins the solicited-node group of each of its addresses. ndp sends
	// the MLD reports itself: these must not call Protocol.Join.
	JoinGroup(ifIndex int, group netip.Addr) error
	LeaveGroup(ifIndex int, group netip.Addr) error
}

// Config tunes a Protocol. The zero value is a host with the RFC defaults.
type Config struct {
	// DADTransmits is DupAddrDetectTransmits (RFC 4862 §5.1): 0 means
	// DupAddrDetectTransmits, negative turns DAD off.
	DADTransmits int
	// RouterSolicitations is how many router solicitations an interface
	// sends: 0 means MaxRtrSolicitations, negative none.
	RouterSolicitations int
	// NoSLAAC turns off address autoconfiguration from advertised
	// prefixes (the link-local address is still made).
	NoSLAAC bool
	// NoLinkLocal: don't make a link-local address on Attach.
	NoLinkLocal bool
	// Forwarding reports whether the stack forwards IPv6 (is a router):
	// then it sends no router solicitations, ignores advertisements and
	// redirects (RFC 4861 §6.2.7, §8.1), and sets the R flag of its
	// advertisements. nil: never.
	Forwarding func() bool
	// Rand draws the random delays. nil: seeded at random. The Protocol
	// uses it under its lock only.
	Rand *rand.Rand
}

// Protocol is neighbour discovery for a stack's Ethernet interfaces. It
// is safe for concurrent use.
type Protocol struct {
	snd Sender
	cfg Config
	log *slog.Logger

	ctr proto.Counters
	st  counters

	mu    sync.Mutex
	att   map[int]*attachment // by interface index
	every map[netip.Addr]int  // groups joined on every interface
	rand  *rand.Rand

	// Work decided under mu runs from the outbox once mu is released.
	qmu      sync.Mutex
	queue    []func()
	draining bool
}

type counters struct {
	in, out      [256]stats.Counter // by ICMPv6 type
	dadStarted   stats.Counter
	dadDone      stats.Counter
	duplicates   stats.Counter
	conflicts    stats.Counter // NA for one of our assigned addresses
	redirectsIn  stats.Counter // accepted
	redirectsBad stats.Counter // refused: not from the first hop
}

// New returns neighbour discovery sending through snd. A nil log discards.
func New(snd Sender, cfg Config, log *slog.Logger) *Protocol {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := cfg.Rand
	if r == nil {
		r = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	return &Protocol{snd: snd, cfg: cfg, log: log, att: make(map[int]*attachment),
		every: make(map[netip.Addr]int), rand: r}
}

// Counters are ND's packet counters (in: every message handed to
// HandleND; out: every message sent; drops by reason).
func (p *Protocol) Counters() *proto.Counters { return &p.ctr }

// VisitStats reports the counters under "ndp.": the proto.Counters,
// in.<type> and out.<type> per ICMPv6 type, dad.started, dad.done,
// dad.duplicates, conflicts, redirects.accepted, redirects.refused.
func (p *Protocol) VisitStats(v stats.Visitor) {
	p.ctr.Visit("ndp.", v)
	for t := range p.st.in {
		if n := p.st.in[t].Load(); n != 0 {
			v("ndp.in."+wire.ICMPv6Type(t).String(), n)
		}
		if n := p.st.out[t].Load(); n != 0 {
			v("ndp.out."+wire.ICMPv6Type(t).String(), n)
		}
	}
	v("ndp.dad.started", p.st.dadStarted.Load())
	v("ndp.dad.done", p.st.dadDone.Load())
	v("ndp.dad.duplicates", p.st.duplicates.Load())
	v("ndp.conflicts", p.st.conflicts.Load())
	v("ndp.redirects.accepted", p.st.redirectsIn.Load())
	v("ndp.redirects.refused", p.st.redirectsBad.Load())
}

func (p *Protocol) forwarding() bool { return p.cfg.Forwarding != nil && p.cfg.Forwarding() }

func (p *Protocol) dadTransmits() int {
	switch {
	case p.cfg.DADTransmits < 0:
		return 0
	case p.cfg.DADTransmits == 0:
		return DupAddrDetectTransmits
	}
	return p.cfg.DADTransmits
}

func (p *Protocol) routerSolicitations() int {
	switch {
	case p.cfg.RouterSolicitations < 0:
		return 0
	case p.cfg.RouterSolicitations == 0:
		return MaxRtrSolicitations
	}
	return p.cfg.RouterSolicitations
}

// randDuration draws from [0, d). Called with p.mu held.
func (p *Protocol) randDuration(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(p.rand.Int64N(int64(d)))
}

// attachment is an interface ND runs on. Everything in it is guarded by
// Protocol.mu.
type attachment struct {
	ifc   proto.Interface
	cache *neigh.Cache
	host  Host
	clk   clock.Clock
	live  bool // false once detached: pending timers do nothing
	// started: the initial delay is over (groups joined on every
	// interface are joined here too).
	started bool

	addrs     map[netip.Addr]*address
	routers   map[netip.Addr]*defaultRouter
	prefixes  map[netip.Prefix]*onLinkPrefix
	redirects map[netip.Addr]*redirect
	groups    map[netip.Addr]*group
	// isRouter remembers which neighbours ndp told the cache are routers,
	// so that updates from solicitations keep the flag (RFC 4861 §7.2.3).
	isRouter map[netip.Addr]bool

	initT         timer // delay before the link-local address's DAD
	rsT           timer
	rsSent        int
	rsDone        bool
	baseReachable time.Duration // last BaseReachableTime from an RA
	adv           *advertiser   // nil: not advertising (advert.go)
	retrans       time.Duration // RetransTimer for DAD
	mld           mldState
}

// maxRouterFlags bounds attachment.isRouter.
const maxRouterFlags = 256

// Attach runs ND on ifc (an Ethernet interface) with cache as its
// neighbour cache (which the stack creates with p.Resolver(ifc) serving
// IPv6 targets) and host doing the stack's part. After a random delay of
// up to MaxRtrSolicitationDelay it makes the link-local address from the
// MAC (DAD first), then solicits routers. Attaching an index again
// replaces the earlier attachment. Attach calls nothing of Host itself:
// the stack may call it holding its locks.
func (p *Protocol) Attach(ifc proto.Interface, cache *neigh.Cache, host Host) {
	p.mu.Lock()
	if old := p.att[ifc.Index()]; old != nil {
		old.stop()
	}
	at := &attachment{
		ifc:       ifc,
		cache:     cache,
		host:      host,
		clk:       cache.Clock(),
		live:      true,
		addrs:     make(map[netip.Addr]*address),
		routers:   make(map[netip.Addr]*defaultRouter),
		prefixes:  make(map[netip.Prefix]*onLinkPrefix),
		redirects: make(map[netip.Addr]*redirect),
		groups:    make(map[netip.Addr]*group),
		isRouter:  make(map[netip.Addr]bool),
		retrans:   neigh.DefaultRetransTimer,
	}
	p.att[ifc.Index()] = at
	p.arm(at, &at.initT, p.randDuration(MaxRtrSolicitationDelay), func() { p.start(at) })
	p.mu.Unlock()
}

// start is the end of the initial delay: the link-local address goes
// through DAD; with none to make, routers are solicited at once.
func (p *Protocol) start(at *attachment) {
	at.started = true
	for g, n := range p.every {
		for range n {
			p.joinGroup(at, g, false)
		}
	}
	mac := at.ifc.HardwareAddr()
	if p.cfg.NoLinkLocal || mac.IsZero() {
		p.startRS(at)
		return
	}
	ll := netip.PrefixFrom(wire.LinkLocalFromMAC(mac), 64)
	if at.addrs[ll.Addr()] != nil {
		return
	}
	if hasAddr(at.ifc, ll.Addr()) {
		// The stack assigned it already.
		p.startRS(at)
		return
	}
	p.newAddress(at, ll, OriginLinkLocal, wire.NDPInfiniteLifetime, wire.NDPInfiniteLifetime)
}

// Detach stops ND on the interface: its messages are dropped and its
// timers cancelled. An advertising interface first sends its final router
// advertisement (RFC 4861 §6.2.5) straight to the link, before Detach
// returns: the stack calls Detach before it closes the link. Routes and
// addresses stay: the stack removes them with the interface. The cache
// stays the stack's to close.
func (p *Protocol) Detach(ifIndex int) {
	var final func()
	p.mu.Lock()
	if at := p.att[ifIndex]; at != nil {
		if at.adv != nil {
			final = p.finalRALink(at)
		}
		at.stop()
		delete(p.att, ifIndex)
	}
	p.mu.Unlock()
	if final != nil {
		final()
	}
}

// stop cancels every timer. Called with p.mu held.
func (at *attachment) stop() {
	at.live = false
	at.initT.stop()
	at.rsT.stop()
	for _, a := range at.addrs {
		a.stopTimers()
	}
	for _, r := range at.routers {
		r.t.stop()
	}
	for _, pf := range at.prefixes {
		pf.t.stop()
	}
	for _, rd := range at.redirects {
		rd.t.stop()
	}
	for _, g := range at.groups {
		g.changeT.stop()
		g.respT.stop()
	}
	at.mld.generalT.stop()
	if at.adv != nil {
		at.adv.t.stop()
	}
}

// timer is a one-shot timer on an attachment's clock whose function runs
// with p.mu held, only if the timer was not stopped or re-armed since and
// the attachment is still live. Guarded by p.mu.
type timer struct {
	t    clock.Timer
	gen  uint64
	when time.Time // when an armed timer is due
}

// arm (re)schedules tm to run f after d. Called with p.mu held.
func (p *Protocol) arm(at *attachment, tm *timer, d time.Duration, f func()) {
	tm.stop()
	g := tm.gen
	tm.when = at.clk.Now().Add(d)
	tm.t = at.clk.AfterFunc(d, func() {
		p.mu.Lock()
		if tm.gen != g || !at.live {
			p.mu.Unlock()
			return
		}
		tm.t = nil
		tm.gen++
		f()
		p.mu.Unlock()
		p.flush()
	})
}

// stop cancels tm. Called with p.mu held.
func (tm *timer) stop() {
	if tm.t != nil {
		tm.t.Stop()
		tm.t = nil
	}
	tm.gen++
}

// pending reports whether tm is armed.
func (tm *timer) pending() bool { return tm.t != nil }

// later queues f to run once p.mu is released (by flush). Called with p.mu
// held, so the queue keeps the order of the decisions.
func (p *Protocol) later(f func()) {
	p.qmu.Lock()
	p.queue = append(p.queue, f)
	p.qmu.Unlock()
}

// flush runs the queued work, unless another goroutine is already doing
// so (it will run ours too, in order). Called without p.mu.
func (p *Protocol) flush() {
	p.qmu.Lock()
	if p.draining {
		p.qmu.Unlock()
		return
	}
	p.draining = true
	for len(p.queue) > 0 {
		f := p.queue[0]
		p.queue[0] = nil
		p.queue = p.queue[1:]
		p.qmu.Unlock()
		f()
		p.qmu.Lock()
	}
	p.queue = nil
	p.draining = false
	p.qmu.Unlock()
}

// HandleND processes one received ND or MLD message (ICMPv6 types 130-137
// and 143) that arrived on ifc. It takes ownership of pkt, whose front is
// the whole ICMPv6 message with its checksum verified; info carries the
// IPv6 addresses and the hop limit (TTL).
func (p *Protocol) HandleND(ifc proto.Interface, info proto.PacketInfo, pkt *buf.Packet) {
	p.ctr.InPackets.Inc()
	p.ctr.InBytes.Add(uint64(pkt.Len()))
	r := p.input(ifc, info, pkt)
	pkt.Release()
	if r != proto.DropNone {
		p.ctr.Drop(r)
	} else {
		p.ctr.Delivered.Inc()
	}
	p.flush()
}

func (p *Protocol) input(ifc proto.Interface, info proto.PacketInfo, pkt *buf.Packet) proto.DropReason {
	m, err := wire.ParseICMPv6(pkt.Pullup(pkt.Len()))
	if err != nil {
		return proto.DropTruncated
	}
	p.st.in[m.Type()].Inc()
	if len(pkt.LinkHeader) >= wire.EthernetHeaderLen && wire.Ethernet(pkt.LinkHeader).Src() == ifc.HardwareAddr() {
		// Our own multicast coming back: never evidence of a
		// duplicate (RFC 4862 §5.4.3).
		return proto.DropBadSource
	}
	info.Src, info.Dst = info.Src.WithZone(""), info.Dst.WithZone("")
	switch m.Type() {
	case wire.ICMPv6NeighborSolicit:
		return p.neighborSolicit(ifc, info, m)
	case wire.ICMPv6NeighborAdvert:
		return p.neighborAdvert(ifc, info, m)
	case wire.ICMPv6RouterAdvert:
		return p.routerAdvert(ifc, info, m)
	case wire.ICMPv6Redirect:
		return p.redirect(ifc, info, m)
	case wire.ICMPv6MLDQuery:
		return p.mldQuery(ifc, info, m)
	case wire.ICMPv6RouterSolicit:
		// RFC 4861 §6.2.6: answered by advertising interfaces of a
		// router; hosts discard these.
		return p.routerSolicit(ifc, info, m)
	case wire.ICMPv6MLDReport, wire.ICMPv6MLDDone, wire.ICMPv6MLDv2Report:
		// Other listeners' reports: an MLDv2 host ignores them (RFC
		// 3810 §6: no report suppression).
		return proto.DropNone
	}
	return proto.DropUnsupported
}

// parseDrop maps a wire error to a drop reason.
func parseDrop(err error) proto.DropReason {
	switch {
	case errors.Is(err, wire.ErrBadOption):
		return proto.DropBadOption
	case errors.Is(err, wire.ErrTruncated):
		return proto.DropTruncated
	case errors.Is(err, wire.ErrBadLength):
		return proto.DropBadLength
	}
	return proto.DropMalformed
}

// hasAddr reports whether a is an address assigned to ifc (tentative ones
// are not assigned).
func hasAddr(ifc proto.Interface, a netip.Addr) bool {
	for _, pfx := range ifc.Addrs() {
		if pfx.Addr().WithZone("") == a {
			return true
		}
	}
	return false
}

// send queues an ICMPv6 message of n bytes, written by encode, from src to
// dst (on-link: a multicast group or a neighbour) out at's interface with
// hop limit hl; routerAlert puts it behind a hop-by-hop header with an MLD
// router alert. Called with p.mu held.
func (p *Protocol) send(ifc proto.Interface, src, dst netip.Addr, hl uint8, routerAlert bool, n int, encode func([]byte)) {
	hbh := 0
	if routerAlert {
		hbh = wire.IPv6RouterAlertHeaderLen
	}
	pkt := buf.New(buf.DefaultHeadroom, hbh+n)
	b := pkt.Bytes()
	encode(b[hbh:])
	m := wire.ICMPv6(b[hbh:])
	m.UpdateChecksum(src, dst)
	p.st.out[m.Type()].Inc()
	next := wire.IPProtoICMPv6
	if routerAlert {
		wire.EncodeIPv6RouterAlertHeader(b, wire.IPProtoICMPv6, wire.IPv6RouterAlertMLD)
		next = wire.IPProtoHopByHop
	}
	pkt.IfIndex = ifc.Index()
	r := proto.Route{
		Src: src, Dst: dst, NextHop: dst,
		IfIndex:   ifc.Index(),
		MTU:       ifc.MTU(),
		Multicast: dst.IsMulticast(),
		Caps:      ifc.Capabilities(),
	}
	p.later(func() {
		p.ctr.OutPackets.Inc()
		p.ctr.OutBytes.Add(uint64(pkt.Len()))
		if err := p.snd.WritePacket(r, next, proto.WriteParams{TTL: hl}, pkt); err != nil {
			p.ctr.Drop(proto.DropLinkError)
		}
	})
}

// linkLocal returns an assigned link-local address of the interface (one
// ndp assigned, perhaps with Host.AddAddress still queued, or one the
// stack has), or the zero Addr. Called with p.mu held.
func (at *attachment) linkLocal() netip.Addr {
	for a, ad := range at.addrs {
		if ad.assigned() && a.IsLinkLocalUnicast() {
			return a
		}
	}
	for _, pfx := range at.ifc.Addrs() {
		if a := pfx.Addr(); a.Is6() && a.IsLinkLocalUnicast() {
			return a.WithZone("")
		}
	}
	return netip.Addr{}
}
