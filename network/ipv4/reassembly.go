package ipv4

import (
	"net/netip"
	"time"

	"ustack/buf"
	"ustack/network/internal/reasm"
	"ustack/proto"
	"ustack/wire"
)

// Reassembly of fragmented datagrams (RFC 791 §3.2, RFC 815 for the idea
// of holes; RFC 1122 §3.3.2 for the timeout and ICMP time exceeded).
//
// Policy, as Linux applies it to IPv4: a fragment that repeats one we hold
// byte range for byte range is dropped alone; one that overlaps otherwise
// drops the whole datagram (the ambiguity attackers use, RFC 5722 in
// spirit); a datagram that would exceed 65535 bytes is dropped; memory held
// by fragments (data bytes only) is capped, the oldest datagram making room
// for new ones. The table itself is network/internal/reasm's.

// fragKey identifies a datagram being reassembled (RFC 791: source,
// destination, protocol, identification).
type fragKey struct {
	src, dst netip.Addr
	proto    wire.IPProtocol
	id       uint16
}

type reassembler struct {
	t *reasm.Table[fragKey, struct{}]
}

func newReassembler(p *Protocol) *reassembler {
	return &reassembler{t: reasm.New[fragKey, struct{}](p.clk, reasm.Policy{
		Timeout: func() time.Duration { return time.Duration(p.reasmTime.Load()) },
		Memory:  func() int { return int(p.reasmMemory.Load()) },
		Drop:    func(r proto.DropReason) { p.counters.Drop(r) },
		// The sender of a datagram whose first fragment came gets time
		// exceeded (RFC 792; RFC 1122 §3.3.2).
		Expired: func(ifIndex int, first *buf.Packet) {
			if ifc := p.ifs.Interface(ifIndex); ifc != nil {
				p.icmp.sendError(ifc, first, 0, wire.ICMPv4TimeExceeded, wire.ICMPv4ReassemblyExceeded, 0)
			}
			first.Release()
		},
	})}
}

func (r *reassembler) pending() int { return r.t.Pending() }
func (r *reassembler) bytes() int   { return r.t.Bytes() }
func (r *reassembler) close()       { r.t.Close() }

// reassemble files a fragment. It takes ownership of pkt (front: IPv4 header h;
// pkt.NetworkHeader set). When the datagram is complete it returns the
// whole payload as one packet whose NetworkHeader is the first fragment's
// header; otherwise nil.
func (p *Protocol) reassemble(ifc proto.Interface, h wire.IPv4, pkt *buf.Packet) *buf.Packet {
	off := h.FragmentOffset()
	hl := h.HeaderLen()
	n := h.TotalLen() - hl
	mf := h.MoreFragments()
	switch {
	case n == 0, mf && n%8 != 0:
		p.drop(pkt, proto.DropFragInvalid)
		return nil
	case off+n+hl > wire.IPv4MaxTotalLen:
		p.drop(pkt, proto.DropFragTooBig)
		return nil
	}
	key := fragKey{h.Src(), h.Dst(), h.Protocol(), h.ID()}
	pkt.TrimFront(hl)
	whole, _, ok := p.reasm.t.Add(key, ifc.Index(), off, mf, pkt, struct{}{})
	if !ok {
		return nil
	}
	p.reasmOK.Inc()
	return whole
}
