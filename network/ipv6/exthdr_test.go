package ipv6

import (
	"bytes"
	"net/netip"
	"testing"

	"ustack/proto"
	"ustack/wire"
)

// routingHeader builds a routing header of the given type and segments
// left, with one address of data.
func routingHeader(next wire.IPProtocol, typ, left uint8) []byte {
	b := make([]byte, 24)
	b[0], b[1], b[2], b[3] = uint8(next), 2, typ, left
	return b
}

func opt(t uint8, data ...byte) wire.IPv6OptionFields {
	return wire.IPv6OptionFields{Type: t, Data: data}
}

func TestExtensionHeaders(t *testing.T) {
	udp := udpDatagram(peer, local, 1, 2, []byte("data"))
	dstAll := netip.MustParseAddr("ff02::1")
	udpAll := udpDatagram(peer, dstAll, 1, 2, []byte("data"))
	type want struct {
		delivered bool
		reason    proto.DropReason // counted once when not delivered
		icmpCode  int              // -1: no parameter problem sent
		pointer   uint32
	}
	tests := []struct {
		name  string
		dst   netip.Addr
		first wire.IPProtocol
		chain []byte
		want  want
	}{
		{"hop-by-hop with router alert", local, wire.IPProtoHopByHop,
			cat(optsHeader(wire.IPProtoUDP, opt(wire.IPv6OptRouterAlert, 0, 0)), udp), want{true, 0, -1, 0}},
		{"destination options, padding only", local, wire.IPProtoDstOpts,
			cat(optsHeader(wire.IPProtoUDP), udp), want{true, 0, -1, 0}},
		{"hop-by-hop not first", local, wire.IPProtoDstOpts,
			cat(optsHeader(wire.IPProtoHopByHop), optsHeader(wire.IPProtoUDP), udp),
			want{false, proto.DropMalformed, int(wire.ICMPv6UnrecognizedNextHeader), 40}},
		{"unknown option, skip", local, wire.IPProtoDstOpts,
			cat(optsHeader(wire.IPProtoUDP, opt(0x1e, 1, 2)), udp), want{true, 0, -1, 0}},
		{"unknown option, discard", local, wire.IPProtoDstOpts,
			cat(optsHeader(wire.IPProtoUDP, opt(0x5e, 1, 2)), udp), want{false, proto.DropBadOption, -1, 0}},
		{"unknown option, discard and report", local, wire.IPProtoDstOpts,
			cat(optsHeader(wire.IPProtoUDP, opt(0x9e, 1, 2)), udp),
			want{false, proto.DropBadOption, int(wire.ICMPv6UnrecognizedOption), 42}},
		{"unknown option, report even to multicast", dstAll, wire.IPProtoDstOpts,
			cat(optsHeader(wire.IPProtoUDP, opt(0x9e, 1, 2)), udpAll),
			want{false, proto.DropBadOption, int(wire.ICMPv6UnrecognizedOption), 42}},
		{"unknown option, report unless multicast (unicast)", local, wire.IPProtoHopByHop,
			cat(optsHeader(wire.IPProtoUDP, opt(1, 0, 0), opt(0xde, 1, 2)), udp),
			want{false, proto.DropBadOption, int(wire.ICMPv6UnrecognizedOption), 46}},
		{"unknown option, report unless multicast (multicast)", dstAll, wire.IPProtoHopByHop,
			cat(optsHeader(wire.IPProtoUDP, opt(0xde, 1, 2)), udpAll), want{false, proto.DropBadOption, -1, 0}},
		{"option past its header", local, wire.IPProtoDstOpts,
			cat([]byte{byte(wire.IPProtoUDP), 0, 0x1e, 9, 0, 0, 0, 0}, udp),
			want{false, proto.DropBadOption, int(wire.ICMPv6ErroneousHeader), 43}},
		{"padding run over 7 bytes", local, wire.IPProtoDstOpts,
			cat([]byte{byte(wire.IPProtoUDP), 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, udp),
			want{false, proto.DropBadOption, -1, 0}},
		{"too many options", local, wire.IPProtoDstOpts,
			cat(optsHeader(wire.IPProtoUDP, opt(0x1e), opt(0x1e), opt(0x1e), opt(0x1e), opt(0x1e),
				opt(0x1e), opt(0x1e), opt(0x1e), opt(0x1e)), udp), want{false, proto.DropBadOption, -1, 0}},
		{"routing type 0 with segments left", local, wire.IPProtoRouting,
			cat(routingHeader(wire.IPProtoUDP, 0, 1), udp),
			want{false, proto.DropUnsupported, int(wire.ICMPv6ErroneousHeader), 42}},
		{"routing type 0, none left", local, wire.IPProtoRouting,
			cat(routingHeader(wire.IPProtoUDP, 0, 0), udp), want{true, 0, -1, 0}},
		{"segment routing header with segments left", local, wire.IPProtoRouting,
			cat(routingHeader(wire.IPProtoUDP, wire.IPv6RoutingTypeSRH, 1), udp),
			want{false, proto.DropUnsupported, int(wire.ICMPv6ErroneousHeader), 42}},
		{"unknown upper layer", local, 253, []byte("12345678"),
			want{false, proto.DropUnknownProtocol, int(wire.ICMPv6UnrecognizedNextHeader), 6}},
		{"unknown upper layer after options", local, wire.IPProtoDstOpts,
			cat(optsHeader(200), []byte("12345678")),
			want{false, proto.DropUnknownProtocol, int(wire.ICMPv6UnrecognizedNextHeader), 40}},
		{"AH without IPsec", local, wire.IPProtoAH, cat([]byte{byte(wire.IPProtoUDP), 4}, make([]byte, 22), udp),
			want{false, proto.DropUnknownProtocol, int(wire.ICMPv6UnrecognizedNextHeader), 6}},
		{"header past the packet", local, wire.IPProtoDstOpts, []byte{byte(wire.IPProtoUDP), 3, 1, 4, 0, 0, 0, 0},
			want{false, proto.DropTruncated, -1, 0}},
		{"no next header", local, wire.IPProtoDstOpts, cat(optsHeader(wire.IPProtoNoNext), []byte("ignored!")),
			want{false, proto.DropNone, -1, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			r.input(r.if1, ipPacket(wire.IPv6Fields{NextHeader: tc.first, Src: peer, Dst: tc.dst}, tc.chain))
			if got := len(r.udp.got) == 1; got != tc.want.delivered {
				t.Fatalf("delivered = %v, want %v", got, tc.want.delivered)
			}
			if tc.want.delivered && !bytes.Equal(r.udp.got[0], tc.chain[len(tc.chain)-len(udp):]) {
				t.Errorf("delivered %x", r.udp.got[0])
			}
			if !tc.want.delivered && tc.want.reason != proto.DropNone && r.p.counters.Dropped(tc.want.reason) != 1 {
				t.Errorf("drop %v = %d, want 1", tc.want.reason, r.p.counters.Dropped(tc.want.reason))
			}
			sent := r.if1.take()
			if tc.want.icmpCode < 0 {
				if len(sent) != 0 {
					t.Errorf("sent %d packets, want none", len(sent))
				}
				return
			}
			if len(sent) != 1 {
				t.Fatalf("sent %d packets, want a parameter problem", len(sent))
			}
			h, m := sentICMP(t, sent[0])
			if m.Type() != wire.ICMPv6ParamProblem || int(m.Code()) != tc.want.icmpCode || m.Pointer() != tc.want.pointer {
				t.Errorf("got %v code %d pointer %d, want code %d pointer %d", m.Type(), m.Code(), m.Pointer(), tc.want.icmpCode, tc.want.pointer)
			}
			if h.Dst() != peer || (!tc.dst.IsMulticast() && h.Src() != local) || (tc.dst.IsMulticast() && h.Src() != local) {
				t.Errorf("error %v -> %v", h.Src(), h.Dst())
			}
			if q, _ := m.Quote(); q.Src() != peer || q.Dst() != tc.dst {
				t.Errorf("quote is not the invoking packet")
			}
		})
	}
}

func TestNoNextHeaderCounted(t *testing.T) {
	r := newRig(t)
	r.input(r.if1, ipPacket(wire.IPv6Fields{NextHeader: wire.IPProtoNoNext, Src: peer, Dst: local}, nil))
	if r.p.noNext.Load() != 1 || r.p.counters.TotalDrops() != 0 {
		t.Errorf("no next header: counted %d, drops %d", r.p.noNext.Load(), r.p.counters.TotalDrops())
	}
}

// chain builds n destination options headers in a row, then a UDP
// datagram.
func chain(n int, udp []byte) []byte {
	var b []byte
	for i := 0; i < n; i++ {
		next := wire.IPProtoDstOpts
		if i == n-1 {
			next = wire.IPProtoUDP
		}
		b = append(b, optsHeader(next)...)
	}
	return append(b, udp...)
}

func TestHeaderChainLimit(t *testing.T) {
	r := newRig(t)
	udp := udpDatagram(peer, local, 1, 2, []byte("x"))
	// At the limit: accepted.
	r.input(r.if1, ipPacket(wire.IPv6Fields{NextHeader: wire.IPProtoDstOpts, Src: peer, Dst: local}, chain(DefaultMaxExtHeaders, udp)))
	if len(r.udp.got) != 1 {
		t.Fatalf("chain of %d headers not delivered", DefaultMaxExtHeaders)
	}
	// 150 chained destination options headers: dropped, counted, no
	// error sent, and the walk stops at the limit.
	for i := 0; i < 100; i++ {
		r.input(r.if1, ipPacket(wire.IPv6Fields{NextHeader: wire.IPProtoDstOpts, Src: peer, Dst: local}, chain(150, udp)))
	}
	if len(r.udp.got) != 1 || r.p.extLimit.Load() != 100 || r.p.counters.Dropped(proto.DropBadOption) != 100 {
		t.Errorf("delivered %d, ext_limit %d, bad_option %d", len(r.udp.got), r.p.extLimit.Load(), r.p.counters.Dropped(proto.DropBadOption))
	}
	if n := len(r.if1.take()); n != 0 {
		t.Errorf("sent %d packets about long chains", n)
	}
	// Still answering afterwards.
	r.input(r.if1, ipPacket(wire.IPv6Fields{NextHeader: wire.IPProtoUDP, Src: peer, Dst: local}, udp))
	if len(r.udp.got) != 2 {
		t.Errorf("normal packet after long chains not delivered")
	}
	// The limit is a tunable.
	r.sys.Set("net.inet6.ip6.max_ext_headers", "2")
	r.input(r.if1, ipPacket(wire.IPv6Fields{NextHeader: wire.IPProtoDstOpts, Src: peer, Dst: local}, chain(3, udp)))
	if len(r.udp.got) != 2 || r.p.extLimit.Load() != 101 {
		t.Errorf("tunable limit not applied")
	}
}

func BenchmarkLongChain(b *testing.B) {
	r := newRig(b)
	pkt := ipPacket(wire.IPv6Fields{NextHeader: wire.IPProtoDstOpts, Src: peer, Dst: local},
		chain(150, udpDatagram(peer, local, 1, 2, nil)))
	b.ReportAllocs()
	for b.Loop() {
		r.input(r.if1, pkt)
	}
}
