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
// watched, so the demo can show a handshake as tcpdump would. It copies
// the headers and leaves the packets untouched.
type tracer struct {
	link.Endpoint

	mu   sync.Mutex
	port uint16 // watch segments to or from this port; 0: none
	segs []segmentTrace
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

// record keeps p if it is a TCP segment of the watched port. The frame is
// Ethernet over IPv4; anything else is ignored.
func (t *tracer) record(p *buf.Packet) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.port == 0 {
		return
	}
	var b [wire.EthernetHeaderLen + 60 + 60]byte
	f := b[:p.CopyTo(b[:])]
	if len(f) < wire.EthernetHeaderLen+wire.IPv4MinHeaderLen || wire.Ethernet(f).Type() != wire.EtherTypeIPv4 {
		return
	}
	ip := wire.IPv4(f[wire.EthernetHeaderLen:])
	if ip.Version() != 4 || ip.Protocol() != wire.IPProtoTCP || ip.IsFragment() || len(ip) < ip.HeaderLen()+wire.TCPMinHeaderLen {
		return
	}
	tcp := wire.TCP(ip[ip.HeaderLen():])
	if tcp.SrcPort() != t.port && tcp.DstPort() != t.port || len(tcp) < tcp.HeaderLen() {
		return
	}
	opts, _ := tcp.ParseOptions()
	t.segs = append(t.segs, segmentTrace{
		src:    netip.AddrPortFrom(ip.Src(), tcp.SrcPort()),
		dst:    netip.AddrPortFrom(ip.Dst(), tcp.DstPort()),
		flags:  tcp.Flags(),
		seq:    tcp.Seq(),
		ack:    tcp.Ack(),
		win:    tcp.Window(),
		opts:   opts,
		length: ip.TotalLen() - ip.HeaderLen() - tcp.HeaderLen(),
	})
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
