package ndp

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"ustack/buf"
	"ustack/internal/clock"
	"ustack/link"
	"ustack/network/neigh"
	"ustack/network/route"
	"ustack/proto"
	"ustack/wire"
)

// fakeIfc is a proto.Interface whose addresses fakeHost changes. ND never
// writes to it directly: it sends through the Sender.
type fakeIfc struct {
	idx  int
	mac  wire.MAC
	mu   sync.Mutex
	addr []netip.Prefix
	mtu  int
	down bool
}

func (f *fakeIfc) Index() int                      { return f.idx }
func (f *fakeIfc) Name() string                    { return "fake0" }
func (f *fakeIfc) LinkType() link.Type             { return link.TypeEthernet }
func (f *fakeIfc) HardwareAddr() wire.MAC          { return f.mac }
func (f *fakeIfc) Capabilities() link.Capabilities { return 0 }
func (f *fakeIfc) MTU() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mtu
}
func (f *fakeIfc) Up() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.down
}
func (f *fakeIfc) Addrs() []netip.Prefix {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.addr
}
func (f *fakeIfc) Output(netip.Addr, wire.EtherType, *buf.Packet) error {
	panic("ndp must send through its Sender")
}
func (f *fakeIfc) OutputLink(wire.MAC, wire.EtherType, *buf.Packet) error {
	panic("ndp must send through its Sender")
}

func (f *fakeIfc) addAddr(p netip.Prefix) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.addr = append(slices.Clone(f.addr), p)
}

func (f *fakeIfc) removeAddr(a netip.Addr) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := slices.IndexFunc(f.addr, func(p netip.Prefix) bool { return p.Addr() == a })
	if i < 0 {
		return false
	}
	f.addr = slices.Delete(slices.Clone(f.addr), i, i+1)
	return true
}

// sent is one packet written through the fake Sender.
type sent struct {
	Route proto.Route
	Proto wire.IPProtocol
	TTL   uint8
	Data  []byte // from the upper-layer header (hop-by-hop header included)
}

// icmp returns the ICMPv6 message of s, past a router alert header.
func (s sent) icmp(t *testing.T) wire.ICMPv6 {
	t.Helper()
	b := s.Data
	if s.Proto == wire.IPProtoHopByHop {
		if len(b) < wire.IPv6RouterAlertHeaderLen || b[0] != byte(wire.IPProtoICMPv6) || b[2] != wire.IPv6OptRouterAlert {
			t.Fatalf("bad hop-by-hop header % x", b)
		}
		b = b[wire.IPv6RouterAlertHeaderLen:]
	} else if s.Proto != wire.IPProtoICMPv6 {
		t.Fatalf("sent protocol %v", s.Proto)
	}
	m, err := wire.ParseICMPv6(b)
	if err != nil {
		t.Fatal(err)
	}
	if !m.ChecksumValid(s.Route.Src, s.Route.Dst) {
		t.Errorf("%v: bad checksum", m.Type())
	}
	return m
}

// fakeSender records what ND sends; route answers Route.
type fakeSender struct {
	mu    sync.Mutex
	out   []sent
	route func(dst netip.Addr) (proto.Route, error)
}

func (s *fakeSender) Route(dst, _ netip.Addr, _ int) (proto.Route, error) {
	s.mu.Lock()
	f := s.route
	s.mu.Unlock()
	if f == nil {
		return proto.Route{}, proto.ErrNoRoute
	}
	return f(dst)
}

func (s *fakeSender) WritePacket(r proto.Route, p wire.IPProtocol, wp proto.WriteParams, pkt *buf.Packet) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.out = append(s.out, sent{r, p, wp.TTL, pkt.ToBytes()})
	pkt.Release()
	return nil
}

func (s *fakeSender) take() []sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.out
	s.out = nil
	return o
}

// fakeHost records ND's requests, and applies address changes to the
// fake interface.
type fakeHost struct {
	ifc *fakeIfc
	mu  sync.Mutex
	log []string
	rt  []route.Route
	dep map[netip.Addr]bool
	mtu int
	hl  uint8
	grp map[netip.Addr]int
}

func (h *fakeHost) record(format string, args ...any) {
	h.log = append(h.log, fmt.Sprintf(format, args...))
}

func (h *fakeHost) AddAddress(ifIndex int, p netip.Prefix, prefixRoute bool) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.record("add %v route=%v", p, prefixRoute)
	h.ifc.addAddr(p)
	return nil
}

func (h *fakeHost) RemoveAddress(ifIndex int, a netip.Addr) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.record("remove %v", a)
	if !h.ifc.removeAddr(a) {
		return fmt.Errorf("no address %v", a)
	}
	return nil
}

func (h *fakeHost) SetDeprecated(ifIndex int, a netip.Addr, dep bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.record("deprecated %v %v", a, dep)
	h.dep[a] = dep
}

func (h *fakeHost) AddRoute(r route.Route) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.record("route add %v", r)
	for _, o := range h.rt {
		if o == r {
			return route.ErrExists
		}
	}
	h.rt = append(h.rt, r)
	return nil
}

func (h *fakeHost) DeleteRoute(r route.Route) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.record("route del %v", r)
	i := slices.Index(h.rt, r)
	if i < 0 {
		return route.ErrNotFound
	}
	h.rt = slices.Delete(h.rt, i, i+1)
	return nil
}

func (h *fakeHost) SetMTU(ifIndex int, mtu int) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.record("mtu %d", mtu)
	h.mtu = mtu
	return nil
}

func (h *fakeHost) SetHopLimit(ifIndex int, hl uint8) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.record("hoplimit %d", hl)
	h.hl = hl
}

func (h *fakeHost) JoinGroup(ifIndex int, g netip.Addr) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.record("join %v", g)
	h.grp[g]++
	return nil
}

func (h *fakeHost) LeaveGroup(ifIndex int, g netip.Addr) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.record("leave %v", g)
	if h.grp[g] == 0 {
		return fmt.Errorf("not joined")
	}
	h.grp[g]--
	return nil
}

func (h *fakeHost) takeLog() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	l := h.log
	h.log = nil
	return l
}

func (h *fakeHost) routes() []route.Route {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.rt)
}

// sink is the neigh.Sender of the test caches.
type sink struct {
	mu     sync.Mutex
	sent   []wire.MAC
	failed []netip.Addr
}

func (s *sink) SendResolved(mac wire.MAC, _ wire.EtherType, pkt *buf.Packet) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, mac)
	pkt.Release()
}

func (s *sink) ResolutionFailed(target netip.Addr, _ wire.EtherType, pkt *buf.Packet) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failed = append(s.failed, target)
	pkt.Release()
}

var (
	t0       = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	ourMAC   = wire.MAC{0x02, 0, 0, 0, 0, 0x01}
	peerMAC  = wire.MAC{0x02, 0, 0, 0, 0, 0x02}
	otherMAC = wire.MAC{0x02, 0, 0, 0, 0, 0x03}
	ourLL    = wire.LinkLocalFromMAC(ourMAC) // fe80::ff:fe00:1
	peerLL   = netip.MustParseAddr("fe80::2")
	routerLL = netip.MustParseAddr("fe80::1")
	otherLL  = netip.MustParseAddr("fe80::3")
	prefix1  = netip.MustParsePrefix("2001:db8:1::/64")
	ourSLAAC = netip.MustParseAddr("2001:db8:1::ff:fe00:1")
	allNodes = wire.IPv6AllNodes()
)

// env is ND on one attached fake interface with a real cache.
type env struct {
	t     *testing.T
	p     *Protocol
	ifc   *fakeIfc
	snd   *fakeSender
	host  *fakeHost
	cache *neigh.Cache
	clk   *clock.Fake
	sink  *sink
}

type envOpt func(*Config)

// newEnv attaches ND to a fake interface; nothing has happened yet (the
// initial delay is pending).
func newEnv(t *testing.T, opts ...envOpt) *env {
	t.Helper()
	ifc := &fakeIfc{idx: 1, mac: ourMAC, mtu: 1500}
	cfg := Config{Rand: rand.New(rand.NewPCG(1, 2))}
	for _, o := range opts {
		o(&cfg)
	}
	snd := &fakeSender{}
	p := New(snd, cfg, nil)
	clk := clock.NewFake(t0)
	s := &sink{}
	cache := neigh.New(clk, neigh.Config{Rand: rand.New(rand.NewPCG(1, 1))}, p.Resolver(ifc), s)
	host := &fakeHost{ifc: ifc, dep: map[netip.Addr]bool{}, grp: map[netip.Addr]int{}}
	p.Attach(ifc, cache, host)
	t.Cleanup(cache.Close)
	return &env{t, p, ifc, snd, host, cache, clk, s}
}

// newUpEnv is newEnv with the link-local address through DAD and the
// router solicitations sent and discarded.
func newUpEnv(t *testing.T, opts ...envOpt) *env {
	t.Helper()
	e := newEnv(t, opts...)
	e.clk.Advance(MaxRtrSolicitationDelay + time.Second)
	if !hasAddr(e.ifc, ourLL) {
		t.Fatalf("link-local address not assigned: %v", e.host.takeLog())
	}
	e.clk.Advance(MaxRtrSolicitations * RtrSolicitationInterval)
	e.snd.take()
	e.host.takeLog()
	return e
}

// in hands ND a message from src to dst with the hop limit.
func (e *env) in(src, dst netip.Addr, hl uint8, msg []byte) {
	e.t.Helper()
	m := wire.ICMPv6(slices.Clone(msg))
	m.UpdateChecksum(src, dst)
	pkt := buf.FromBytes(m)
	e.p.HandleND(e.ifc, proto.PacketInfo{Src: src, Dst: dst, Proto: wire.IPProtoICMPv6, IfIndex: e.ifc.idx, TTL: hl}, pkt)
}

func (e *env) state(a netip.Addr) neigh.State {
	_, st, _ := e.cache.Lookup(a)
	return st
}

func (e *env) entry(a netip.Addr) (neigh.Entry, bool) {
	for _, en := range e.cache.Entries() {
		if en.Addr == a {
			return en, true
		}
	}
	return neigh.Entry{}, false
}

func (e *env) drops(r proto.DropReason) uint64 { return e.p.Counters().Dropped(r) }

// encoders

type encoder interface {
	Len() int
	Encode([]byte)
}

func enc(f encoder) []byte {
	b := make([]byte, f.Len())
	for i := range b {
		b[i] = 0xa5 // a field the encoder forgets shows
	}
	f.Encode(b)
	return b
}

func ns(target netip.Addr, slla *wire.MAC) []byte {
	return enc(&wire.NDPNeighborSolicitFields{Target: target, SourceLLA: slla})
}

func na(target netip.Addr, router, solicited, override bool, tlla *wire.MAC) []byte {
	return enc(&wire.NDPNeighborAdvertFields{Router: router, Solicited: solicited, Override: override, Target: target, TargetLLA: tlla})
}

func mac(m wire.MAC) *wire.MAC { return &m }

// filter returns the packets of ICMPv6 type t.
func filter(t *testing.T, out []sent, typ wire.ICMPv6Type) []sent {
	t.Helper()
	var r []sent
	for _, s := range out {
		if s.icmp(t).Type() == typ {
			r = append(r, s)
		}
	}
	return r
}

func one(t *testing.T, out []sent, typ wire.ICMPv6Type) sent {
	t.Helper()
	r := filter(t, out, typ)
	if len(r) != 1 {
		t.Fatalf("%d %v sent, want 1 (all: %d)", len(r), typ, len(out))
	}
	return r[0]
}

func hasLog(log []string, s string) bool { return slices.Contains(log, s) }

// groupOwn is how many of ND's own addresses hold group g.
func (e *env) groupOwn(g netip.Addr) int {
	e.p.mu.Lock()
	defer e.p.mu.Unlock()
	if gr := e.p.att[e.ifc.idx].groups[g]; gr != nil {
		return gr.own
	}
	return 0
}

func (e *env) addrInfo(a netip.Addr) AddrInfo {
	e.t.Helper()
	for _, ai := range e.p.Addresses(e.ifc.idx) {
		if ai.Prefix.Addr() == a {
			return ai
		}
	}
	e.t.Fatalf("ND has no address %v", a)
	return AddrInfo{}
}
