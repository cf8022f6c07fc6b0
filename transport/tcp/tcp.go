// Package tcp is ustack's TCP (RFC 9293): a transport protocol above the
// network layer. It owns connections and their state machines, listeners
// with SYN and accept queues and SYN cookies (RFC 4987), the 4-tuple
// demultiplexing table, local ports and ephemeral port selection (RFC
// 6056), initial sequence numbers (RFC 6528), and the answers to segments
// nobody wants (RST, RFC 9293 §3.10.7.1). Congestion control is behind
// the interface of package cc.
//
// It does not block, keep goroutines or know about deadlines: the socket
// package builds net.Conn and net.Listener on the non-blocking Conn and
// Listener and their readiness channels; timers run on the injected clock.
// It does not route, fragment or build IP headers (proto.Network does),
// and it answers unreachable ports itself, with RST, never with ICMP.
//
// The package has two halves. The protocol (tcp.go, demux.go, ports.go,
// listen.go, syncookie.go, isn.go) receives, validates and demultiplexes
// segments and runs the listen side; the connection engine (conn.go,
// input.go, output.go and the files beside them) is one connection's state
// machine. segment.go holds what they share.
//
// Locking: the receive path takes only the read lock of one of 256 demux
// shards, then the connection's own lock (the engine's). The listener
// table is an immutable map swapped on change. Port bindings are sharded
// by port. Order: listener, port shard, demux shard; a connection's lock
// is never taken while a protocol lock is held.
package tcp

import (
	"cmp"
	"encoding/binary"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"ustack/buf"
	"ustack/internal/clock"
	"ustack/internal/seqnum"
	"ustack/internal/stats"
	"ustack/link"
	"ustack/link/offload"
	"ustack/proto"
	"ustack/transport/tcp/cc"
	"ustack/wire"
)

// Defaults of the listen side's tunables.
const (
	DefaultSynackRetries = 5    // net.inet.tcp.synack_retries (Linux)
	DefaultMaxSynBacklog = 1024 // net.inet.tcp.max_syn_backlog
	DefaultSomaxconn     = 4096 // net.inet.tcp.somaxconn (Linux net.core.somaxconn)
)

// Protocol is the TCP transport of one stack. It implements
// proto.TransportProtocol and proto.SocketLister.
type Protocol struct {
	net proto.Network
	clk clock.Clock
	log *slog.Logger
	sys *proto.Sysctl
	// cc holds the congestion control algorithms (RegisterCC adds).
	cc    *cc.Registry
	stats tcpStats
	tun   tunables

	// epoch is when the stack started: the origin of the ISN, timestamp
	// and cookie clocks.
	epoch time.Time
	sec   secrets

	conns demux
	ports portTable
	// listeners maps a listening address to its listener; replaced whole
	// under lmu, read without locks.
	lmu       sync.Mutex
	listeners atomic.Pointer[map[netip.AddrPort]*Listener]
}

// tcpStats are the protocol's counters, named like netstat -s. The
// engine's live in connStats (protocol_hooks.go); in/out segments and
// drops by reason in proto.Counters (out.packets counts every segment
// sent: by connections and by the protocol itself).
type tcpStats struct {
	proto.Counters
	connStats

	PassiveOpens     stats.Counter // handshakes completed by listeners
	InRsts           stats.Counter // RST segments received
	InErrs           stats.Counter // segments with a bad header, options, flags or checksum
	InCsumErrors     stats.Counter // segments with a bad checksum
	InBadFlags       stats.Counter // SYN+FIN, SYN+RST or no flags: dropped
	NoPortRsts       stats.Counter // RSTs answering segments for no connection or listener
	ListenOverflows  stats.Counter // final ACKs or SYNs dropped: accept queue full
	ListenDrops      stats.Counter // SYNs and final ACKs a listener could not take
	SynQueueDrops    stats.Counter // half-open entries dropped after synack_retries
	SyncookiesSent   stats.Counter // SYN-ACKs carrying a cookie
	SyncookiesRecv   stats.Counter // valid cookies received
	SyncookiesFailed stats.Counter // invalid cookies received
	Parked           stats.Counter // segments held for a connection being created
}

// VisitStats reports the counters under "tcp.".
func (p *Protocol) VisitStats(v stats.Visitor) {
	const pre = "tcp."
	s := &p.stats
	s.Counters.Visit(pre, v)
	s.connStats.visit(pre, v)
	for _, c := range []struct {
		name string
		c    *stats.Counter
	}{
		{"passive_opens", &s.PassiveOpens}, {"in_rsts", &s.InRsts},
		{"in_errs", &s.InErrs}, {"in_csum_errors", &s.InCsumErrors},
		{"in_bad_flags", &s.InBadFlags}, {"no_port_rsts", &s.NoPortRsts},
		{"listen_overflows", &s.ListenOverflows}, {"listen_drops", &s.ListenDrops},
		{"syn_queue_drops", &s.SynQueueDrops},
		{"syncookies_sent", &s.SyncookiesSent}, {"syncookies_recv", &s.SyncookiesRecv},
		{"syncookies_failed", &s.SyncookiesFailed}, {"parked", &s.Parked},
	} {
		v(pre+c.name, c.c.Load())
	}
	// As Linux's CurrEstab: connections in ESTABLISHED or CLOSE-WAIT;
	// conns is every connection in the table, TIME-WAIT included.
	estab := 0
	p.conns.each(func(c *Conn) {
		if st := c.state(); st == StateEstablished || st == StateCloseWait {
			estab++
		}
	})
	v(pre+"curr_estab", uint64(estab))
	v(pre+"conns", uint64(p.conns.len()))
}

// tunables are the protocol's tunables; the engine's are in connTunables
// (protocol_hooks.go).
type tunables struct {
	connTunables
	SynackRetries atomic.Int64 // net.inet.tcp.synack_retries
	// Syncookies: 0 never, 1 when a SYN queue overflows, 2 always.
	Syncookies    atomic.Int64 // net.inet.tcp.syncookies
	MaxSynBacklog atomic.Int64 // net.inet.tcp.max_syn_backlog
	Somaxconn     atomic.Int64 // net.inet.tcp.somaxconn
	// TWReuse: 0 never, 1 always, 2 for loopback peers only (Linux
	// tcp_tw_reuse): whether Dial may take over a 4-tuple in TIME_WAIT.
	TWReuse atomic.Int64 // net.inet.tcp.tw_reuse
}

// New returns the TCP protocol sending through n, with timers on clk. It
// registers its tunables (net.inet.tcp.*) in sys if not nil. A nil log
// discards.
func New(n proto.Network, clk clock.Clock, sys *proto.Sysctl, log *slog.Logger) *Protocol {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if clk == nil {
		clk = clock.Real{}
	}
	p := &Protocol{net: n, clk: clk, log: log, sys: sys, cc: cc.NewRegistry(),
		epoch: clk.Now(), sec: newSecrets()}
	p.conns.init(p.sec.port.k1 ^ p.sec.isn.k0)
	empty := map[netip.AddrPort]*Listener{}
	p.listeners.Store(&empty)
	t := &p.tun
	t.connTunables.setDefaults()
	t.SynackRetries.Store(DefaultSynackRetries)
	t.Syncookies.Store(1)
	t.MaxSynBacklog.Store(DefaultMaxSynBacklog)
	t.Somaxconn.Store(DefaultSomaxconn)
	t.TWReuse.Store(1)
	if sys != nil {
		t.connTunables.register(sys, p.cc)
		for _, tu := range []*proto.Tunable{
			proto.IntTunable("net.inet.tcp.synack_retries", "SYN-ACK retransmissions before a half-open connection is dropped", &t.SynackRetries, 0, 100),
			proto.IntTunable("net.inet.tcp.syncookies", "SYN cookies (RFC 4987): 0 never, 1 when the SYN queue overflows, 2 always", &t.Syncookies, 0, 2),
			proto.IntTunable("net.inet.tcp.max_syn_backlog", "bound of a listener's SYN queue (half-open connections)", &t.MaxSynBacklog, 1, 1<<24),
			proto.IntTunable("net.inet.tcp.somaxconn", "bound of a listener's backlog", &t.Somaxconn, 1, 1<<24),
			proto.IntTunable("net.inet.tcp.tw_reuse", "reuse TIME-WAIT 4-tuples for new connections: 0 never, 1 always, 2 loopback only", &t.TWReuse, 0, 2),
		} {
			sys.Register(tu)
		}
	}
	return p
}

// Protocol returns wire.IPProtoTCP.
func (p *Protocol) Protocol() wire.IPProtocol { return wire.IPProtoTCP }

// Stats returns the protocol's per-packet counters.
func (p *Protocol) Stats() *proto.Counters { return &p.stats.Counters }

// RegisterCC adds (or replaces) a congestion control algorithm, selectable
// per connection (Options.CongestionControl) and by
// net.inet.tcp.cc_algorithm. Register algorithms before the stack carries
// connections: the registry is read without locks.
func (p *Protocol) RegisterCC(name string, f cc.Factory) { p.cc.Register(name, f) }

// Errors of Dial and Listen besides the errno values.
var errAddrFamily = errors.New("tcp: local and remote address families differ")

// Dial starts an active open from laddr to raddr and returns the
// connection in SYN-SENT at once; the socket layer waits for it to become
// writable. A zero laddr port picks an ephemeral port (RFC 6056); an
// invalid or unspecified laddr address takes the route's source address.
// Errors: EADDRINUSE (the local port is bound and ReuseAddr does not
// allow sharing it), EADDRNOTAVAIL (no ephemeral port left, the 4-tuple is
// in use, or laddr is not local), ENETUNREACH (no route, or a broadcast
// or multicast raddr), ECONNREFUSED for port 0 (as Linux reports it),
// EINVAL for an invalid raddr, and what newConn returns.
func (p *Protocol) Dial(laddr, raddr netip.AddrPort, o Options) (*Conn, error) {
	dst := raddr.Addr().Unmap()
	if !dst.IsValid() {
		return nil, syscall.EINVAL
	}
	if raddr.Port() == 0 {
		return nil, syscall.ECONNREFUSED
	}
	if dst.IsUnspecified() && dst.Is4() {
		// 4.4BSD and Linux: connecting to INADDR_ANY means this host.
		dst = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	if dst.IsMulticast() || dst == limitedBroadcast {
		return nil, syscall.ENETUNREACH
	}
	var src netip.Addr
	if !isWildcard(laddr.Addr()) {
		src = laddr.Addr().Unmap()
		if src.Is4() != dst.Is4() {
			return nil, errAddrFamily
		}
		if !p.net.LocalAddr(src) {
			return nil, syscall.EADDRNOTAVAIL
		}
	}
	r, err := p.net.Route(dst, src, 0)
	if errors.Is(err, proto.ErrNoRoute) {
		return nil, syscall.ENETUNREACH
	} else if err != nil {
		return nil, err
	}
	if r.Broadcast || r.Multicast {
		return nil, syscall.ENETUNREACH
	}
	if !src.IsValid() {
		src = r.Src.Unmap()
	}
	// Connections are keyed by addresses without zones, as segments
	// arrive; the network layer routes a link-local pair by its source.
	src = src.WithZone("")
	remote := netip.AddrPortFrom(dst.WithZone(""), raddr.Port())
	var id connID
	var k tupleKey
	if laddr.Port() == 0 {
		id, k, err = p.reserveEphemeral(src, remote, o.ReuseAddr)
	} else {
		id = connID{local: netip.AddrPortFrom(src, laddr.Port()), remote: remote}
		k, err = p.reserveExplicit(id, o.ReuseAddr)
	}
	if err != nil {
		return nil, err
	}
	c, err := newConn(p, id, p.isn(id, p.clk.Now()), o)
	if err != nil {
		p.unreserve(k)
		return nil, err
	}
	p.deliverParked(c, p.conns.publish(k, c))
	return c, nil
}

// deliverParked hands c the segments that arrived while its tuple was
// reserved.
func (p *Protocol) deliverParked(c *Conn, segs []*segment) {
	for _, s := range segs {
		p.stats.Delivered.Inc()
		c.deliver(s)
	}
}

// remove unhashes c: its 4-tuple and its hold on the local port. The
// engine calls it when c reaches CLOSED (TIME_WAIT connections stay until
// they expire). Removing twice does nothing.
func (p *Protocol) remove(c *Conn) {
	k := keyOf(c.id())
	if p.conns.remove(k, c) {
		p.releaseTuple(k)
	}
}

// Close closes every listener and aborts every connection (RST where the
// state calls for one), stopping their timers: the stack is going away.
func (p *Protocol) Close() {
	for _, l := range *p.listeners.Load() {
		l.Close()
	}
	var all []*Conn
	p.conns.each(func(c *Conn) { all = append(all, c) })
	for _, c := range all {
		c.Abort()
	}
}

// Sockets calls f for every listener, half-open connection (SYN-RECV) and
// connection, ordered by local port, local address and remote address.
func (p *Protocol) Sockets(f func(proto.SocketInfo)) {
	var infos []proto.SocketInfo
	for _, l := range *p.listeners.Load() {
		infos = l.appendInfos(infos)
	}
	p.conns.each(func(c *Conn) { infos = append(infos, c.info()) })
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

var limitedBroadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

// sendControl builds and sends one segment without payload outside any
// connection (RST, SYN-ACK, cookie SYN-ACK) from id.local to id.remote,
// with Don't Fragment set. The checksum is left to the link when it
// offloads checksums.
func (p *Protocol) sendControl(id connID, seq, ack seqnum.Value, flags wire.TCPFlags, wnd uint16, opts *wire.TCPOptions) error {
	r, err := p.net.Route(id.remote.Addr(), id.local.Addr(), 0)
	if err != nil {
		return err
	}
	f := wire.TCPFields{SrcPort: id.local.Port(), DstPort: id.remote.Port(),
		Seq: uint32(seq), Ack: uint32(ack), Flags: flags, Window: wnd}
	if opts != nil {
		f.Options = *opts
	}
	hl := f.Len()
	pkt := buf.New(p.net.MaxHeaderLen(), hl)
	t := wire.TCP(pkt.Bytes())
	f.Encode(t)
	pseudo := wire.PseudoHeaderChecksum(wire.IPProtoTCP, r.Src, r.Dst, hl)
	if r.Caps.Has(link.CapTxChecksum) {
		// Partial checksum (virtio-net semantics): the link completes it
		// from the pseudo-header sum stored in the field.
		t.SetChecksum(pseudo)
		pkt.Offload = buf.Offload{NeedsCsum: true, CsumStart: 0, CsumOffset: 16}
	} else {
		t.UpdateChecksum(pseudo)
	}
	if err := p.net.WritePacket(r, wire.IPProtoTCP, proto.WriteParams{DF: true}, pkt); err != nil {
		return err
	}
	p.stats.OutPackets.Inc()
	p.stats.OutBytes.Add(uint64(hl))
	if flags&wire.TCPFlagRST != 0 {
		p.stats.OutRsts.Inc()
	}
	return nil
}

// quotedID is the connection an ICMP error quotes (our segment: source
// port first), and the quoted sequence number.
func quotedID(e *proto.ICMPError) (connID, seqnum.Value, bool) {
	q := e.Quote
	if len(q) < 8 {
		return connID{}, 0, false
	}
	id := connID{
		local:  netip.AddrPortFrom(e.Src.Unmap(), binary.BigEndian.Uint16(q[0:])),
		remote: netip.AddrPortFrom(e.Dst.Unmap(), binary.BigEndian.Uint16(q[2:])),
	}
	return id, seqnum.Value(binary.BigEndian.Uint32(q[4:])), true
}

// HandleError receives an ICMP error about a segment this stack sent and
// hands it to the connection that sent it (which validates the quoted
// sequence number, RFC 5927 §4.1), or to the listener whose SYN-ACK it
// quotes.
func (p *Protocol) HandleError(e *proto.ICMPError) {
	if e.Proto != wire.IPProtoTCP && e.Proto != 0 {
		return
	}
	id, seq, ok := quotedID(e)
	if !ok {
		return
	}
	if c, _ := p.conns.lookup(keyOf(id)); c != nil {
		c.handleICMP(e)
		return
	}
	if l := p.listener(id.local); l != nil {
		l.handleICMP(id, seq, e)
	}
}

// Receive path:
//
//	HandlePacket: unicast only → header length → checksum → options → flags
//	  → segment (header trimmed)
//	  → demux: 4-tuple → Conn.deliver
//	           reserved tuple → parked until the connection is published
//	           listener (address:port, then wildcard:port) → Listener.input
//	           nobody → RST (RFC 9293 §3.10.7.1)

// HandlePacket receives a segment whose front is the TCP header. It always
// takes ownership of pkt and returns proto.Consumed: TCP answers segments
// for closed ports with RST itself.
func (p *Protocol) HandlePacket(info proto.PacketInfo, pkt *buf.Packet) proto.Verdict {
	p.stats.InPackets.Inc()
	p.stats.InBytes.Add(uint64(pkt.Len()))
	// Connections are keyed by addresses without zones (the network
	// layer zones link-local sources for sockets that reply by address).
	src, dst := info.Src.Unmap().WithZone(""), info.Dst.Unmap().WithZone("")
	// RFC 9293 §3.9.1 and RFC 1122 §4.2.3.10: TCP is unicast; a SYN from
	// a broadcast or multicast source must be ignored, and no reply may go
	// to one.
	if info.Broadcast || info.Multicast || dst.IsMulticast() {
		return p.drop(pkt, proto.DropNotForUs, false)
	}
	if !src.IsValid() || src.IsUnspecified() || src.IsMulticast() || src == limitedBroadcast {
		return p.drop(pkt, proto.DropBadSource, false)
	}
	hb := pkt.Pullup(wire.TCPMinHeaderLen)
	if hb == nil {
		return p.drop(pkt, proto.DropTruncated, true)
	}
	// RFC 9293 §3.1: the data offset counts 32-bit words, at least 5,
	// and the header must lie within the segment.
	hl := int(hb[12]>>4) * 4
	if hl < wire.TCPMinHeaderLen || hl > pkt.Len() {
		return p.drop(pkt, proto.DropBadHeaderLen, true)
	}
	n := pkt.Len()
	if !pkt.Offload.CsumValid && !pkt.Offload.NeedsCsum {
		pseudo := wire.PseudoHeaderChecksum(wire.IPProtoTCP, src, dst, n)
		if wire.ChecksumCombine(pseudo, offload.Sum(pkt, 0, n)) != 0xffff {
			p.stats.InCsumErrors.Inc()
			return p.drop(pkt, proto.DropBadChecksum, true)
		}
	}
	t := wire.TCP(pkt.Pullup(hl))
	opts, err := t.ParseOptions()
	if err != nil {
		// RFC 9293 §3.1 requires handling any option length; a length
		// of 0 or 1, or one running past the header, leaves the rest of
		// the header unparseable: the segment is dropped.
		return p.drop(pkt, proto.DropBadOption, true)
	}
	flags := t.Flags()
	if badFlags(flags) {
		p.stats.InBadFlags.Inc()
		return p.drop(pkt, proto.DropMalformed, true)
	}
	seg := segment{
		id: connID{
			local:  netip.AddrPortFrom(dst, t.DstPort()),
			remote: netip.AddrPortFrom(src, t.SrcPort()),
		},
		seq: seqnum.Value(t.Seq()), ack: seqnum.Value(t.Ack()),
		flags: flags, wnd: t.Window(), urg: t.Urgent(), opts: opts,
		ttl: info.TTL, tos: info.TOS, ifIndex: info.IfIndex, batch: info.Batch,
	}
	if flags&wire.TCPFlagRST != 0 {
		p.stats.InRsts.Inc()
	}
	pkt.TransportHeader = t
	pkt.TrimFront(hl)
	if pkt.Len() > 0 {
		seg.pkt, seg.payloadLen = pkt, pkt.Len()
	} else {
		pkt.Release()
	}
	p.input(&seg)
	return proto.Consumed
}

// badFlags reports the control-bit combinations no TCP sends: SYN with FIN
// or RST, and none of SYN, FIN, RST, ACK (nor PSH, URG). They are
// dropped without an answer, as FreeBSD's drop_synfin and Linux's
// listener do, so scans learn nothing (RFC 9293 leaves them undefined).
func badFlags(f wire.TCPFlags) bool {
	const (
		syn = wire.TCPFlagSYN
		fin = wire.TCPFlagFIN
		rst = wire.TCPFlagRST
	)
	return f&(syn|fin) == syn|fin || f&(syn|rst) == syn|rst ||
		f&(syn|fin|rst|wire.TCPFlagACK|wire.TCPFlagPSH|wire.TCPFlagURG) == 0
}

// drop releases pkt, counting it under r (and as an input error).
func (p *Protocol) drop(pkt *buf.Packet, r proto.DropReason, inErr bool) proto.Verdict {
	p.stats.Drop(r)
	if inErr {
		p.stats.InErrs.Inc()
	}
	pkt.Release()
	return proto.Consumed
}

// input demultiplexes a validated segment, handing on ownership of its
// payload.
func (p *Protocol) input(seg *segment) {
	k := keyOf(seg.id)
	for {
		c, reserved := p.conns.lookup(k)
		if c != nil {
			p.stats.Delivered.Inc()
			c.deliver(seg)
			return
		}
		if !reserved {
			break
		}
		cp := new(segment)
		*cp = *seg
		parked, full := p.conns.park(k, cp)
		if parked {
			p.stats.Parked.Inc()
			return
		}
		if full {
			seg.release()
			p.stats.Drop(proto.DropQueueFull)
			return
		}
		// Published or dropped meanwhile: look again.
	}
	p.toListener(seg)
}

// toListener hands a segment that matches no connection to the listener
// of its destination, or answers it with RST. The engine calls it too,
// for a SYN that ends a TIME_WAIT connection early (RFC 6191) once it
// has removed that connection.
func (p *Protocol) toListener(seg *segment) {
	if l := p.listener(seg.id.local); l != nil {
		if seg.arrived.IsZero() {
			seg.arrived = p.clk.Now()
		}
		l.input(seg)
		return
	}
	p.stats.Drop(proto.DropNoEndpoint)
	p.replyRST(seg)
	seg.release()
}

// replyRST answers a segment that belongs to no connection (RFC 9293
// §3.10.7.1, CLOSED): never a RST; to an ACK, <SEQ=SEG.ACK><CTL=RST>;
// otherwise <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>. It does not take
// the payload.
func (p *Protocol) replyRST(seg *segment) {
	if seg.flags&wire.TCPFlagRST != 0 {
		return
	}
	var err error
	if seg.flags&wire.TCPFlagACK != 0 {
		err = p.sendControl(seg.id, seg.ack, 0, wire.TCPFlagRST, 0, nil)
	} else {
		err = p.sendControl(seg.id, 0, seg.seq.Add(seg.seqLen()), wire.TCPFlagRST|wire.TCPFlagACK, 0, nil)
	}
	if err == nil {
		p.stats.NoPortRsts.Inc()
	}
}
