package wire_test

import (
	"errors"
	"net/netip"
	"testing"

	"ustack/wire"
)

// ipv6Fields reads a parsed header back into fields.
func ipv6Fields(h wire.IPv6) wire.IPv6Fields {
	return wire.IPv6Fields{
		TrafficClass: h.TrafficClass(), FlowLabel: h.FlowLabel(), PayloadLen: h.PayloadLen(),
		NextHeader: h.NextHeader(), HopLimit: h.HopLimit(), Src: h.Src(), Dst: h.Dst(),
	}
}

var (
	a6one   = netip.MustParseAddr("2001:db8::1")
	a6two   = netip.MustParseAddr("2001:db8::2")
	llOne   = netip.MustParseAddr("fe80::ff:fe00:1")
	llTwo   = netip.MustParseAddr("fe80::ff:fe00:2")
	macOne  = wire.MAC{2, 0, 0, 0, 0, 1}
	macTwo  = wire.MAC{2, 0, 0, 0, 0, 2}
	allMLD2 = netip.MustParseAddr("ff02::16")
)

func TestIPv6Golden(t *testing.T) {
	for _, tc := range []struct {
		name  string
		frame []byte
		want  wire.IPv6Fields
	}{
		{"echo", goldenEcho6, wire.IPv6Fields{FlowLabel: 0xc6202, PayloadLen: 24, NextHeader: wire.IPProtoICMPv6, HopLimit: 64, Src: a6one, Dst: a6two}},
		{"UDP", goldenUDP6, wire.IPv6Fields{FlowLabel: 0x26a35, PayloadLen: 14, NextHeader: wire.IPProtoUDP, HopLimit: 64, Src: a6one, Dst: a6two}},
		{"DAD NS", goldenDADNS, wire.IPv6Fields{PayloadLen: 32, NextHeader: wire.IPProtoICMPv6, HopLimit: 255, Src: netip.IPv6Unspecified(), Dst: netip.MustParseAddr("ff02::1:ff00:2")}},
		{"MLDv2 report", goldenMLDv2Report, wire.IPv6Fields{PayloadLen: 36, NextHeader: wire.IPProtoHopByHop, HopLimit: 1, Src: llOne, Dst: allMLD2}},
		{"routing", goldenRH0, wire.IPv6Fields{PayloadLen: 32, NextHeader: wire.IPProtoRouting, HopLimit: 64, Src: a6one, Dst: a6two}},
		{"proto 150", goldenProto150, wire.IPv6Fields{PayloadLen: 8, NextHeader: 150, HopLimit: 64, Src: a6one, Dst: a6two}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := ip6(tc.frame)
			h, err := wire.ParseIPv6(raw)
			if err != nil {
				t.Fatal(err)
			}
			if d := diff(tc.want, ipv6Fields(h)); d != "" {
				t.Errorf("fields %s", d)
			}
			check(t, "Version", h.Version(), 6)
			checkBytes(t, "Header", h.Header(), raw[:40])
			checkBytes(t, "Payload", h.Payload(), raw[40:])
			checkBytes(t, "Packet", h.Packet(), raw)

			b := filled(tc.want.Len() + 4)
			tc.want.Encode(b)
			checkBytes(t, "Encode", b[:tc.want.Len()], raw[:40])
			checkBytes(t, "beyond Len", b[tc.want.Len():], filled(4))
		})
	}
}

// TestIPv6Padding: bytes after the payload length (Ethernet padding) are
// kept out of Payload and Packet.
func TestIPv6Padding(t *testing.T) {
	raw := append(append([]byte{}, ip6(goldenUDP6)...), 0, 0, 0, 0)
	h, err := wire.ParseIPv6(raw)
	if err != nil {
		t.Fatal(err)
	}
	checkBytes(t, "Payload", h.Payload(), ip6(goldenUDP6)[40:])
	checkBytes(t, "Packet", h.Packet(), ip6(goldenUDP6))
}

func TestIPv6Errors(t *testing.T) {
	v4 := append([]byte{}, ip6(goldenEcho6)...)
	v4[0] = 0x45
	long := append([]byte{}, ip6(goldenEcho6)...)
	long[5]++ // payload length 25 of 24 bytes
	// RFC 2675 §2: payload length 0, hop-by-hop with a jumbo payload
	// option (0xc2, len 4, 70000).
	jumbo := unhex(`
		60 00 00 00  00 00 00 40
		20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01
		20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02
		3a 00  c2 04 00 01 11 70
	`)
	// Payload length 0 and hop-by-hop, no jumbo option: parses (the chain
	// walk then finds the header truncated).
	zeroHBH := append([]byte{}, jumbo...)
	zeroHBH[42] = wire.IPv6OptPadN
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"IPv4", v4, wire.ErrBadVersion},
		{"payload past end", long, wire.ErrTruncated},
		{"jumbo", jumbo, wire.ErrUnsupported},
		{"empty", nil, wire.ErrTruncated},
		{"zero payload, no jumbo", zeroHBH, nil},
	} {
		_, err := wire.ParseIPv6(tc.b)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	// A quote need not hold the whole payload, but needs the fixed header.
	if q, err := wire.ParseIPv6Quote(long); err != nil || len(q.Payload()) != 24 {
		t.Errorf("ParseIPv6Quote(long): %v", err)
	}
	if _, err := wire.ParseIPv6Quote(v4); !errors.Is(err, wire.ErrBadVersion) {
		t.Errorf("ParseIPv6Quote(IPv4): %v", err)
	}
}

// TestIPv6Prefixes: every proper prefix of a packet fails with
// ErrTruncated, the whole parses.
func TestIPv6Prefixes(t *testing.T) {
	for i, frame := range ipv6Frames {
		raw := ip6(frame)
		for n := range len(raw) {
			if _, err := wire.ParseIPv6(raw[:n]); !errors.Is(err, wire.ErrTruncated) {
				t.Errorf("frame %d cut to %d of %d bytes: err = %v", i, n, len(raw), err)
			}
			_, err := wire.ParseIPv6Quote(raw[:n])
			if n < 40 && !errors.Is(err, wire.ErrTruncated) || n >= 40 && err != nil {
				t.Errorf("frame %d quote cut to %d: err = %v", i, n, err)
			}
		}
		if _, err := wire.ParseIPv6(raw); err != nil {
			t.Errorf("frame %d: %v", i, err)
		}
	}
}

func TestIPv6Setters(t *testing.T) {
	f := wire.IPv6Fields{TrafficClass: 0xb8, FlowLabel: 0xfffff, PayloadLen: 0, NextHeader: wire.IPProtoNoNext, HopLimit: 1,
		Src: netip.MustParseAddr("2001:db8::a"), Dst: netip.MustParseAddr("ff02::1")}
	b := filled(40)
	f.Encode(b)
	checkBytes(t, "first word", b[:4], []byte{0x6b, 0x8f, 0xff, 0xff})
	h, err := wire.ParseIPv6(b)
	if err != nil {
		t.Fatal(err)
	}
	if d := diff(f, ipv6Fields(h)); d != "" {
		t.Errorf("fields %s", d)
	}
	h.SetTrafficClass(0x01)
	h.SetFlowLabel(0x12345678) // masked to 20 bits
	check(t, "TrafficClass", h.TrafficClass(), 0x01)
	check(t, "FlowLabel", h.FlowLabel(), 0x45678)
	check(t, "Version", h.Version(), 6)
	h.SetPayloadLen(1234)
	h.SetNextHeader(wire.IPProtoTCP)
	h.SetHopLimit(255)
	h.SetSrc(netip.Addr{})
	h.SetDst(a6two)
	check(t, "PayloadLen", h.PayloadLen(), 1234)
	check(t, "NextHeader", h.NextHeader(), wire.IPProtoTCP)
	check(t, "HopLimit", h.HopLimit(), 255)
	check(t, "Src (zero Addr)", h.Src(), netip.IPv6Unspecified())
	check(t, "Dst", h.Dst(), a6two)
	check(t, "PseudoHeaderChecksum", h.PseudoHeaderChecksum(wire.IPProtoTCP, 20),
		wire.PseudoHeaderChecksum(wire.IPProtoTCP, netip.IPv6Unspecified(), a6two, 20))

	// The flow label above 20 bits does not spill into the traffic class.
	f = wire.IPv6Fields{FlowLabel: 0xfff00000}
	f.Encode(b)
	checkBytes(t, "masked flow label", b[:4], []byte{0x60, 0, 0, 0})
}

func TestIPv6Addrs(t *testing.T) {
	check(t, "IPv6AllNodes", wire.IPv6AllNodes(), netip.MustParseAddr("ff02::1"))
	check(t, "IPv6AllRouters", wire.IPv6AllRouters(), netip.MustParseAddr("ff02::2"))
	check(t, "IPv6AllMLDv2Routers", wire.IPv6AllMLDv2Routers(), allMLD2)
	check(t, "IPv6AllNodes = netip's", wire.IPv6AllNodes(), netip.IPv6LinkLocalAllNodes())

	// RFC 4291 §2.7.1: low 24 bits after ff02::1:ff00:0/104.
	for in, want := range map[string]string{
		"2001:db8::2":                            "ff02::1:ff00:2",
		"fe80::ff:fe00:1":                        "ff02::1:ff00:1",
		"2001:db8::1234:5678:9abc":               "ff02::1:ff78:9abc",
		"fe80::21b:21ff:fe3c:4d5e":               "ff02::1:ff3c:4d5e",
		"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff": "ff02::1:ffff:ffff",
	} {
		check(t, "SolicitedNodeMulticast("+in+")", wire.SolicitedNodeMulticast(netip.MustParseAddr(in)), netip.MustParseAddr(want))
	}
	// The Ethernet group address the solicited-node group maps to
	// (goldenNS's destination MAC).
	sn := wire.SolicitedNodeMulticast(a6two)
	check(t, "MulticastMACv6", wire.MulticastMACv6(sn.As16()), wire.MAC(goldenNS[:6]))

	// Modified EUI-64 (RFC 4291 Appendix A): the U/L bit flips, ff:fe in
	// the middle. The golden link-local addresses are Linux's own.
	for _, tc := range []struct {
		mac  wire.MAC
		want string
	}{
		{macOne, "fe80::ff:fe00:1"},
		{macTwo, "fe80::ff:fe00:2"},
		{wire.MAC{0x00, 0x1b, 0x21, 0x3c, 0x4d, 0x5e}, "fe80::21b:21ff:fe3c:4d5e"},
		{wire.MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, "fe80::fdff:ffff:feff:ffff"},
	} {
		check(t, "LinkLocalFromMAC("+tc.mac.String()+")", wire.LinkLocalFromMAC(tc.mac), netip.MustParseAddr(tc.want))
	}
	check(t, "EUI64", wire.EUI64(macOne), [8]byte{0, 0, 0, 0xff, 0xfe, 0, 0, 1})

	// SLAAC: the RA's prefix and the EUI-64 give the address Linux formed
	// (its DAD probe in the capture was for 2001:db8:1::ff:fe00:1).
	a, ok := wire.AddrWithInterfaceID(netip.MustParsePrefix("2001:db8:1::/64"), wire.EUI64(macOne))
	check(t, "AddrWithInterfaceID ok", ok, true)
	check(t, "AddrWithInterfaceID", a, netip.MustParseAddr("2001:db8:1::ff:fe00:1"))
	for _, p := range []netip.Prefix{{}, netip.MustParsePrefix("2001:db8::/48"), netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::ffff:10.0.0.0/64")} {
		if _, ok := wire.AddrWithInterfaceID(p, wire.EUI64(macOne)); ok {
			t.Errorf("AddrWithInterfaceID(%v) ok", p)
		}
	}
}
