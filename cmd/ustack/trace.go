package main

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"

	"ustack/buf"
	"ustack/link"
	"ustack/wire"
)

// tracer is a link decorator for the demo: it records the TCP segments
// that cross the link it wraps, in both directions, while a port is being
// watched, and the ICMPv6 echo and neighbour discovery messages while
// those are watched, so the demo can show a handshake or a neighbour
// solicitation as tcpdump would. It copies the headers and leaves the
// packets untouched.
type tracer struct {
	link.Endpoint

	mu    sync.Mutex
	port  uint16 // watch segments to or from this port; 0: none
	segs  []segmentTrace
	icmp6 bool     // watch ICMPv6 echo and ND messages
	msgs  []string // the ICMPv6 messages seen, as tcpdump prints them
}

// segmentTrace is what the tracer keeps of one segment.
type segmentTrace struct {
	src, dst netip.AddrPort
	flags    wire.TCPFlags
	seq, ack uint32
	win      uint16
	opts     wire.TCPOptions
	length   int
}

func newTracer(ep link.Endpoint) *tracer { return &tracer{Endpoint: ep} }

// watch starts recording the segments of port, forgetting earlier ones.
func (t *tracer) watch(port uint16) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.port, t.segs = port, nil
}

// stop stops recording and returns what was recorded.
func (t *tracer) stop() []segmentTrace {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.port = 0
	return t.segs
}

// watchICMPv6 starts recording ICMPv6 echo and ND messages, forgetting
// earlier ones.
func (t *tracer) watchICMPv6() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.icmp6, t.msgs = true, nil
}

// stopICMPv6 stops recording ICMPv6 and returns the messages seen.
func (t *tracer) stopICMPv6() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.icmp6 = false
	return t.msgs
}

// WriteBatch records the outgoing segments and passes the batch on; it
// takes ownership of the packets as link.Endpoint says.
func (t *tracer) WriteBatch(pkts []*buf.Packet) (int, error) {
	for _, p := range pkts {
		t.record(p)
	}
	return t.Endpoint.WriteBatch(pkts)
}

// Attach puts the tracer between the link and d.
func (t *tracer) Attach(d link.Dispatcher) {
	if d == nil {
		t.Endpoint.Attach(nil)
		return
	}
	t.Endpoint.Attach(link.DispatcherFunc(func(_ link.Endpoint, pkts []*buf.Packet) {
		for _, p := range pkts {
			t.record(p)
		}
		d.DeliverBatch(t, pkts)
	}))
}

// LinkStats passes the wrapped link's counters through.
func (t *tracer) LinkStats() *link.Stats {
	if c, ok := t.Endpoint.(link.Counted); ok {
		return c.LinkStats()
	}
	return &link.Stats{}
}

// record keeps p if it is a TCP segment of the watched port, or an
// ICMPv6 message while those are watched. The frame is Ethernet over
// IPv4 or IPv6 (without extension headers); anything else is ignored.
func (t *tracer) record(p *buf.Packet) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.port == 0 && !t.icmp6 {
		return
	}
	var b [wire.EthernetHeaderLen + 60 + 128]byte
	f := b[:p.CopyTo(b[:])]
	if len(f) < wire.EthernetHeaderLen {
		return
	}
	var (
		src, dst netip.Addr
		next     wire.IPProtocol
		payload  []byte // what follows the IP header, as far as copied
		plen     int    // its length in the packet
	)
	switch l3 := f[wire.EthernetHeaderLen:]; wire.Ethernet(f).Type() {
	case wire.EtherTypeIPv4:
		ip := wire.IPv4(l3)
		if len(ip) < wire.IPv4MinHeaderLen || ip.Version() != 4 || ip.IsFragment() || len(ip) < ip.HeaderLen() {
			return
		}
		src, dst, next = ip.Src(), ip.Dst(), ip.Protocol()
		payload, plen = ip[ip.HeaderLen():], ip.TotalLen()-ip.HeaderLen()
	case wire.EtherTypeIPv6:
		ip := wire.IPv6(l3)
		if len(ip) < wire.IPv6HeaderLen || ip.Version() != 6 {
			return
		}
		src, dst, next = ip.Src(), ip.Dst(), ip.NextHeader()
		payload, plen = ip[wire.IPv6HeaderLen:], ip.PayloadLen()
	default:
		return
	}
	switch {
	case next == wire.IPProtoTCP && t.port != 0:
		t.recordTCP(src, dst, wire.TCP(payload), plen)
	case next == wire.IPProtoICMPv6 && t.icmp6:
		if line := icmp6Line(src, dst, wire.ICMPv6(payload), plen); line != "" {
			t.msgs = append(t.msgs, line)
		}
	}
}

// recordTCP keeps a segment of the watched port. Called with t.mu held.
func (t *tracer) recordTCP(src, dst netip.Addr, tcp wire.TCP, plen int) {
	if len(tcp) < wire.TCPMinHeaderLen || len(tcp) < tcp.HeaderLen() || tcp.SrcPort() != t.port && tcp.DstPort() != t.port {
		return
	}
	opts, _ := tcp.ParseOptions()
	t.segs = append(t.segs, segmentTrace{
		src:    netip.AddrPortFrom(src, tcp.SrcPort()),
		dst:    netip.AddrPortFrom(dst, tcp.DstPort()),
		flags:  tcp.Flags(),
		seq:    tcp.Seq(),
		ack:    tcp.Ack(),
		win:    tcp.Window(),
		opts:   opts,
		length: plen - tcp.HeaderLen(),
	})
}

// icmp6Line describes an ICMPv6 echo or ND message as tcpdump does
// (without the echo identifier, which differs from run to run, and with
// a router advertisement's prefixes), or returns "" for other messages.
func icmp6Line(src, dst netip.Addr, m wire.ICMPv6, plen int) string {
	if len(m) < wire.ICMPv6HeaderLen {
		return ""
	}
	var what string
	switch m.Type() {
	case wire.ICMPv6EchoRequest:
		what = fmt.Sprintf("echo request, seq %d", m.Seq())
	case wire.ICMPv6EchoReply:
		what = fmt.Sprintf("echo reply, seq %d", m.Seq())
	case wire.ICMPv6RouterSolicit:
		what = "router solicitation"
	case wire.ICMPv6RouterAdvert:
		what = "router advertisement"
		if ra, err := wire.ParseNDPRouterAdvert(m.Body()); err == nil {
			it := wire.NewNDPOptIter(ra.Options())
			for o, ok := it.Next(); ok; o, ok = it.Next() {
				if pi, ok := o.PrefixInfo(); ok {
					what += ", prefix " + pi.Prefix.String()
				}
			}
		}
	case wire.ICMPv6NeighborSolicit:
		ns, err := wire.ParseNDPNeighborSolicit(m.Body())
		if err != nil {
			return ""
		}
		what = "neighbor solicitation, who has " + ns.Target().String()
	case wire.ICMPv6NeighborAdvert:
		na, err := wire.ParseNDPNeighborAdvert(m.Body())
		if err != nil {
			return ""
		}
		what = "neighbor advertisement, tgt is " + na.Target().String()
	default:
		return ""
	}
	return fmt.Sprintf("%s > %s: ICMP6, %s, length %d", src, dst, what, plen)
}

// formatTrace writes segments as tcpdump does, with sequence numbers
// relative to each side's initial one (so the text is the same on every
// run) and without timestamp values.
func formatTrace(segs []segmentTrace) []string {
	isn := map[netip.AddrPort]uint32{}
	for _, s := range segs {
		if s.flags.Has(wire.TCPFlagSYN) {
			if _, ok := isn[s.src]; !ok {
				isn[s.src] = s.seq
			}
		}
	}
	var out []string
	for _, s := range segs {
		var b strings.Builder
		fmt.Fprintf(&b, "%s.%d > %s.%d: Flags [%s], seq %d", s.src.Addr(), s.src.Port(), s.dst.Addr(), s.dst.Port(),
			dumpFlags(s.flags), s.seq-isn[s.src])
		if s.flags.Has(wire.TCPFlagACK) {
			fmt.Fprintf(&b, ", ack %d", s.ack-isn[s.dst])
		}
		fmt.Fprintf(&b, ", win %d", s.win)
		if o := dumpOptions(s.opts); o != "" {
			fmt.Fprintf(&b, ", options [%s]", o)
		}
		fmt.Fprintf(&b, ", length %d", s.length)
		out = append(out, b.String())
	}
	return out
}

// dumpFlags spells flags as tcpdump: S, F, R, P, U, E, W, and "." for ACK.
func dumpFlags(f wire.TCPFlags) string {
	var s string
	for _, x := range []struct {
		f wire.TCPFlags
		c string
	}{{wire.TCPFlagSYN, "S"}, {wire.TCPFlagFIN, "F"}, {wire.TCPFlagRST, "R"}, {wire.TCPFlagPSH, "P"},
		{wire.TCPFlagURG, "U"}, {wire.TCPFlagECE, "E"}, {wire.TCPFlagCWR, "W"}, {wire.TCPFlagACK, "."}} {
		if f.Has(x.f) {
			s += x.c
		}
	}
	if s == "" {
		return "none"
	}
	return s
}

// dumpOptions lists the options of a segment, timestamps without their
// values.
func dumpOptions(o wire.TCPOptions) string {
	var parts []string
	if o.HasMSS {
		parts = append(parts, fmt.Sprintf("mss %d", o.MSS))
	}
	if o.SACKPermitted {
		parts = append(parts, "sackOK")
	}
	if o.HasTimestamps {
		parts = append(parts, "TS")
	}
	if o.HasWScale {
		parts = append(parts, fmt.Sprintf("wscale %d", o.WScale))
	}
	if o.NumSACK > 0 {
		parts = append(parts, fmt.Sprintf("sack %d", o.NumSACK))
	}
	return strings.Join(parts, ",")
}
