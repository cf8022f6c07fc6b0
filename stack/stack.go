// Package stack composes a ustack instance: interfaces over links,
// addresses, the routing table, the neighbour caches, the protocols (ARP,
// IPv4, IPv6 with neighbour discovery, UDP, TCP, ICMP and ICMPv6 echo), tunables, counters and the socket table. It is the
// composition layer and holds no protocol logic: it wires the protocol
// packages together through the contracts in proto.
//
// Many stacks live side by side in one process; nothing here is global.
package stack

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"

	"ustack/internal/clock"
	"ustack/internal/stats"
	"ustack/link/loopback"
	"ustack/network/arp"
	"ustack/network/ipv4"
	"ustack/network/ipv6"
	"ustack/network/ndp"
	"ustack/network/neigh"
	"ustack/network/route"
	"ustack/proto"
	"ustack/transport/icmp"
	"ustack/transport/tcp"
	"ustack/transport/udp"
)

// Options configure a stack. The zero value is a stack on the real clock
// that logs nothing, with a loopback interface.
type Options struct {
	// Name labels the stack in logs.
	Name string
	// Clock drives every timer; default clock.Real.
	Clock clock.Clock
	// Logger receives the stack's logs; default: discard.
	Logger *slog.Logger
	// Neighbor configures every interface's neighbour cache; zero fields
	// take neigh's defaults. A Rand given here seeds a generator per cache.
	Neighbor neigh.Config
	// NoLoopback leaves out the loopback interface "lo" (127.0.0.1/8, ::1).
	NoLoopback bool
}

// Stack is one instance of the network stack.
type Stack struct {
	name   string
	clk    clock.Clock
	log    *slog.Logger
	ncfg   neigh.Config
	sysctl proto.Sysctl
	routes route.Table

	arp   *arp.Protocol
	ipv4  *ipv4.Protocol
	ipv6  *ipv6.Protocol
	nd    *ndp.Protocol
	icmp6 *icmp.Protocol
	udp   *udp.Protocol
	tcp   *tcp.Protocol
	icmp  *icmp.Protocol
	net   netMux

	mu        sync.Mutex // serializes configuration changes
	ifaces    atomic.Pointer[ifaceTable]
	nextIndex int
	lo        atomic.Pointer[Interface] // read on the data path without s.mu
	closed    bool
}

// ifaceTable is an immutable snapshot of interfaces and local addresses,
// replaced whole on every change so the data path reads it without locks.
type ifaceTable struct {
	byIndex map[int]*Interface
	byName  map[string]*Interface
	local   map[netip.Addr]int // address -> interface index
}

// New creates a stack.
func New(o Options) *Stack {
	s := &Stack{name: o.Name, clk: o.Clock, log: o.Logger, ncfg: o.Neighbor}
	if s.clk == nil {
		s.clk = clock.Real{}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.name != "" {
		s.log = s.log.With("stack", s.name)
	}
	s.ifaces.Store(&ifaceTable{byIndex: map[int]*Interface{}, byName: map[string]*Interface{}, local: map[netip.Addr]int{}})
	ifs := (*interfaces)(s)
	s.arp = arp.New(ifs, s.log)
	s.ipv4 = ipv4.New(ifs, &s.routes, s.clk, &s.sysctl, s.log)
	s.ipv6 = ipv6.New(ifs, &s.routes, s.clk, &s.sysctl, s.log)
	s.net = netMux{v4: s.ipv4, v6: s.ipv6, ifs: ifs}
	s.udp = udp.New(&s.net, &s.sysctl, s.log)
	s.icmp = icmp.New(&s.net, s.log)
	s.icmp6 = icmp.New6(&s.net, s.log)
	s.tcp = tcp.New(&s.net, s.clk, &s.sysctl, s.log)
	s.ipv4.RegisterTransport(s.udp)
	s.ipv4.RegisterTransport(s.tcp)
	s.ipv4.RegisterTransport(s.icmp)
	s.ipv6.RegisterTransport(s.udp)
	s.ipv6.RegisterTransport(s.tcp)
	s.ipv6.RegisterTransport(s.icmp6)
	s.nd = ndp.New(s.ipv6, ndp.Config{Forwarding: s.ipv6.Forwarding}, s.log)
	s.ipv6.SetNDHandler(s.nd)
	if !o.NoLoopback {
		lo, err := s.AddInterface("lo", loopback.New(65535))
		if err != nil {
			panic(err) // cannot fail on an empty stack
		}
		s.lo.Store(lo)
		s.AddAddress("lo", netip.MustParsePrefix("127.0.0.1/8"))
		s.AddAddress("lo", netip.MustParsePrefix("::1/128"))
	}
	return s
}

// Name is the stack's label.
func (s *Stack) Name() string { return s.name }

// Clock is the stack's clock.
func (s *Stack) Clock() clock.Clock { return s.clk }

// Logger is the stack's logger.
func (s *Stack) Logger() *slog.Logger { return s.log }

// UDP is the UDP protocol (for the socket layer).
func (s *Stack) UDP() *udp.Protocol { return s.udp }

// TCP is the TCP protocol (for the socket layer).
func (s *Stack) TCP() *tcp.Protocol { return s.tcp }

// ICMP is the ICMP echo protocol (for ping sockets).
func (s *Stack) ICMP() *icmp.Protocol { return s.icmp }

// ICMP6 is the ICMPv6 echo protocol (for IPv6 ping sockets).
func (s *Stack) ICMP6() *icmp.Protocol { return s.icmp6 }

// IPv6 is the IPv6 protocol.
func (s *Stack) IPv6() *ipv6.Protocol { return s.ipv6 }

// NDP is IPv6 neighbour discovery (addresses, routers, prefixes, groups).
func (s *Stack) NDP() *ndp.Protocol { return s.nd }

// IPv4 is the IPv4 protocol.
func (s *Stack) IPv4() *ipv4.Protocol { return s.ipv4 }

// Routes is the routing table.
func (s *Stack) Routes() *route.Table { return &s.routes }

// Sysctl is the registry of tunables ("net.inet.ip.forwarding").
func (s *Stack) Sysctl() *proto.Sysctl { return &s.sysctl }

// SetSysctl sets a tunable by name.
func (s *Stack) SetSysctl(name, value string) error { return s.sysctl.Set(name, value) }

// GetSysctl reads a tunable by name.
func (s *Stack) GetSysctl(name string) (string, error) { return s.sysctl.Get(name) }

// Errors of configuration calls.
var (
	ErrExists      = errors.New("stack: already exists")
	ErrNoInterface = errors.New("stack: no such interface")
	ErrClosed      = errors.New("stack: closed")
)

// Interface returns the interface with the name, or nil.
func (s *Stack) Interface(name string) *Interface { return s.ifaces.Load().byName[name] }

// InterfaceByIndex returns the interface with the index, or nil.
func (s *Stack) InterfaceByIndex(i int) *Interface { return s.ifaces.Load().byIndex[i] }

// Interfaces returns every interface, by index.
func (s *Stack) Interfaces() []*Interface {
	t := s.ifaces.Load()
	out := make([]*Interface, 0, len(t.byIndex))
	for _, ifc := range t.byIndex {
		out = append(out, ifc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].index < out[j].index })
	return out
}

// update applies f to a copy of the interface table and publishes it.
// Callers hold s.mu.
func (s *Stack) update(f func(t *ifaceTable)) {
	old := s.ifaces.Load()
	t := &ifaceTable{byIndex: make(map[int]*Interface, len(old.byIndex)+1),
		byName: make(map[string]*Interface, len(old.byName)+1), local: make(map[netip.Addr]int, len(old.local)+1)}
	for k, v := range old.byIndex {
		t.byIndex[k] = v
	}
	for k, v := range old.byName {
		t.byName[k] = v
	}
	for k, v := range old.local {
		t.local[k] = v
	}
	f(t)
	s.ifaces.Store(t)
}

// VisitStats lists every counter of the stack: per interface (link and
// framing), ARP and neighbour caches, IPv4, IPv6 and ICMPv6, neighbour
// discovery, ICMP (the protocol, and its echo sockets under icmp.socket.,
// ICMPv6 ones under icmp6.socket.), UDP, TCP.
func (s *Stack) VisitStats(v stats.Visitor) {
	for _, ifc := range s.Interfaces() {
		ifc.visitStats(v)
	}
	s.arp.VisitStats(v)
	s.ipv4.VisitStats(v)
	s.ipv6.VisitStats(v)
	s.nd.VisitStats(v)
	s.icmp.VisitStats(v)
	s.icmp6.VisitStats(v)
	s.udp.VisitStats(v)
	s.tcp.VisitStats(v)
}

// Stats returns every counter by name.
func (s *Stack) Stats() map[string]uint64 {
	m := make(map[string]uint64)
	s.VisitStats(func(name string, value uint64) { m[name] = value })
	return m
}

// Sockets lists the open sockets of every transport.
func (s *Stack) Sockets() []proto.SocketInfo {
	var out []proto.SocketInfo
	f := func(i proto.SocketInfo) { out = append(out, i) }
	s.udp.Sockets(f)
	s.tcp.Sockets(f)
	s.icmp.Sockets(f)
	s.icmp6.Sockets(f)
	return out
}

// Close removes every interface (closing their links) and stops the
// protocols' timers.
func (s *Stack) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	for _, ifc := range s.Interfaces() {
		s.RemoveInterface(ifc.name)
	}
	s.tcp.Close()
	s.ipv4.Close()
	s.ipv6.Close()
	return nil
}

func (s *Stack) String() string { return fmt.Sprintf("stack %q", s.name) }
