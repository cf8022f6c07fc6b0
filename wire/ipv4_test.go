package wire_test

import (
	"errors"
	"net/netip"
	"testing"

	"ustack/wire"
)

// ipv4Fields reads a parsed header back into fields.
func ipv4Fields(h wire.IPv4) wire.IPv4Fields {
	return wire.IPv4Fields{
		TOS: h.TOS(), TotalLen: h.TotalLen(), ID: h.ID(), Flags: h.Flags(),
		FragOff: h.FragmentOffset(), TTL: h.TTL(), Protocol: h.Protocol(),
		Src: h.Src(), Dst: h.Dst(), Options: h.Options(),
	}
}

func TestIPv4Golden(t *testing.T) {
	a1, a2 := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	for _, tc := range []struct {
		name    string
		frame   []byte
		want    wire.IPv4Fields
		csum    uint16
		optsLen int
	}{
		{"UDP", goldenUDP, wire.IPv4Fields{TOS: 0, TotalLen: 34, ID: 0xa8dc, Flags: wire.IPv4FlagDF, TTL: 64, Protocol: wire.IPProtoUDP, Src: a1, Dst: a2}, 0x7dec, 0},
		{"echo RR", goldenEchoRR, wire.IPv4Fields{TotalLen: 84, ID: 0x5edb, Flags: wire.IPv4FlagDF, TTL: 64, Protocol: wire.IPProtoICMP, Src: a1, Dst: a2}, 0x8bbb, 40},
		{"reply RR", goldenEchoReplyRR, wire.IPv4Fields{TotalLen: 84, ID: 0x2823, TTL: 64, Protocol: wire.IPProtoICMP, Src: a2, Dst: a1}, 0x183f, 40},
		{"IGMP RA", goldenIGMPRA, wire.IPv4Fields{TOS: 0xc0, TotalLen: 40, Flags: wire.IPv4FlagDF, TTL: 1, Protocol: wire.IPProtoIGMP, Src: a1, Dst: netip.MustParseAddr("224.0.0.22")}, 0xf9f8, 4},
		{"port unreachable", goldenPortUnreach, wire.IPv4Fields{TOS: 0xc0, TotalLen: 62, ID: 0x2824, TTL: 64, Protocol: wire.IPProtoICMP, Src: a2, Dst: a1}, 0x3dd9, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := ip(tc.frame)
			h, err := wire.ParseIPv4(raw)
			if err != nil {
				t.Fatal(err)
			}
			tc.want.Options = raw[20 : 20+tc.optsLen]
			if d := diff(tc.want, ipv4Fields(h)); d != "" {
				t.Errorf("fields %s", d)
			}
			check(t, "Version", h.Version(), 4)
			check(t, "HeaderLen", h.HeaderLen(), 20+tc.optsLen)
			check(t, "Checksum", h.Checksum(), tc.csum)
			check(t, "ChecksumValid", h.ChecksumValid(), true)
			check(t, "DontFragment", h.DontFragment(), tc.want.Flags&wire.IPv4FlagDF != 0)
			check(t, "MoreFragments", h.MoreFragments(), false)
			check(t, "IsFragment", h.IsFragment(), false)
			checkBytes(t, "Header", h.Header(), raw[:20+tc.optsLen])
			checkBytes(t, "Payload", h.Payload(), raw[20+tc.optsLen:])
			checkBytes(t, "Packet", h.Packet(), raw)

			b := filled(tc.want.Len() + 4)
			tc.want.Encode(b)
			checkBytes(t, "Encode", b[:tc.want.Len()], raw[:20+tc.optsLen])
			checkBytes(t, "beyond Len", b[tc.want.Len():], filled(4))
		})
	}
}

func TestIPv4Fragment(t *testing.T) {
	f := wire.IPv4Fields{TotalLen: 20, ID: 7, Flags: wire.IPv4FlagMF, FragOff: 1480, TTL: 9,
		Protocol: wire.IPProtoUDP, Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("192.0.2.2")}
	b := filled(f.Len())
	f.Encode(b)
	checkBytes(t, "flags/offset word", b[6:8], []byte{0x20, 0xb9}) // MF | 1480/8 = 185
	h, err := wire.ParseIPv4(b)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "MoreFragments", h.MoreFragments(), true)
	check(t, "FragmentOffset", h.FragmentOffset(), 1480)
	check(t, "IsFragment", h.IsFragment(), true)
	check(t, "Flags", h.Flags(), wire.IPv4FlagMF)
	check(t, "ChecksumValid", h.ChecksumValid(), true)
	h.SetFlagsOffset(0, 8)
	check(t, "IsFragment (last)", h.IsFragment(), true)
	check(t, "MoreFragments (last)", h.MoreFragments(), false)
}

// TestIPv4OptionsPadding: options that are not a multiple of 4 bytes are
// padded with zeros (end of option list), and IHL follows.
func TestIPv4OptionsPadding(t *testing.T) {
	f := wire.IPv4Fields{TotalLen: 24, TTL: 1, Protocol: wire.IPProtoIGMP,
		Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("224.0.0.1"),
		Options: []byte{1}} // one NOP
	check(t, "Len", f.Len(), 24)
	b := filled(f.Len())
	f.Encode(b)
	check(t, "IHL", b[0], 0x46)
	checkBytes(t, "options", b[20:], []byte{1, 0, 0, 0})
	h, err := wire.ParseIPv4(b)
	if err != nil || !h.ChecksumValid() {
		t.Fatalf("ParseIPv4: %v, checksum valid %v", err, err == nil && h.ChecksumValid())
	}
	if err := wire.ValidateIPv4Options(h.Options()); err != nil {
		t.Errorf("ValidateIPv4Options: %v", err)
	}

	defer func() {
		if recover() == nil {
			t.Error("Encode with 41 bytes of options did not panic")
		}
	}()
	f.Options = make([]byte, 41)
	f.Encode(make([]byte, 64))
}

// TestIPv4ZeroAddr: the zero netip.Addr encodes as 0.0.0.0 (a DHCP
// client's source).
func TestIPv4ZeroAddr(t *testing.T) {
	f := wire.IPv4Fields{TotalLen: 20, TTL: 64, Protocol: wire.IPProtoUDP, Dst: netip.IPv4Unspecified()}
	b := filled(20)
	f.Encode(b)
	checkBytes(t, "src, dst", b[12:20], make([]byte, 8))
}

func TestIPv4Errors(t *testing.T) {
	raw := ip(goldenEchoRR) // 60-byte header, 84 bytes in all
	for _, tc := range []struct {
		name string
		edit func(b []byte) []byte
		want error
	}{
		{"version 6", func(b []byte) []byte { b[0] = 0x6f; return b }, wire.ErrBadVersion},
		{"IHL 4", func(b []byte) []byte { b[0] = 0x44; return b }, wire.ErrBadLength},
		{"IHL 0", func(b []byte) []byte { b[0] = 0x40; return b }, wire.ErrBadLength},
		{"total length below header", func(b []byte) []byte { b[2], b[3] = 0, 59; return b }, wire.ErrBadLength},
		{"total length past buffer", func(b []byte) []byte { b[2], b[3] = 0, 85; return b }, wire.ErrTruncated},
		{"header past buffer", func(b []byte) []byte { return b[:59] }, wire.ErrTruncated},
	} {
		b := tc.edit(append([]byte(nil), raw...))
		if _, err := wire.ParseIPv4(b); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	// Link-layer padding after the total length is kept in the view but
	// not in Payload and Packet.
	padded := append(append([]byte(nil), ip(goldenUDP)...), 0, 0, 0, 0, 0, 0)
	h, err := wire.ParseIPv4(padded)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "len(Payload)", len(h.Payload()), 14)
	check(t, "len(Packet)", len(h.Packet()), 34)

	// A corrupted header fails the checksum.
	bad := append([]byte(nil), raw...)
	bad[8]++
	if h, _ := wire.ParseIPv4(bad); h.ChecksumValid() {
		t.Error("ChecksumValid after corrupting TTL")
	}
}

// TestIPv4Prefixes: every prefix shorter than the total length fails
// cleanly; truncated headers and truncated payloads both say ErrTruncated.
func TestIPv4Prefixes(t *testing.T) {
	for _, frame := range [][]byte{goldenUDP, goldenEchoRR, goldenIGMPRA, goldenSYN, goldenSACK, goldenPortUnreach} {
		raw := ip(frame)
		for n := range len(raw) {
			if _, err := wire.ParseIPv4(raw[:n]); !errors.Is(err, wire.ErrTruncated) {
				t.Errorf("% x...[:%d]: err = %v, want ErrTruncated", raw[:4], n, err)
			}
		}
		if _, err := wire.ParseIPv4(raw); err != nil {
			t.Errorf("% x...: %v", raw[:4], err)
		}
	}
}

func TestIPv4Quote(t *testing.T) {
	m, err := wire.ParseICMPv4(l4(goldenPortUnreach))
	if err != nil {
		t.Fatal(err)
	}
	q, err := m.Quote()
	if err != nil {
		t.Fatal(err)
	}
	check(t, "quoted Src", q.Src(), netip.MustParseAddr("10.0.0.1"))
	check(t, "quoted Dst", q.Dst(), netip.MustParseAddr("10.0.0.2"))
	check(t, "quoted Protocol", q.Protocol(), wire.IPProtoUDP)
	check(t, "quoted ID", q.ID(), 0xa8dc)
	checkBytes(t, "quoted Payload", q.Payload(), l4(goldenUDP))

	// Cut to header + 8 (the RFC 792 minimum): Payload is what is there.
	body := m.Payload()
	q, err = wire.ParseIPv4Quote(body[:28])
	if err != nil {
		t.Fatal(err)
	}
	checkBytes(t, "cut Payload", q.Payload(), l4(goldenUDP)[:8])
	checkBytes(t, "cut Packet", q.Packet(), body[:28])
	u, err := wire.ParseUDP(q.Payload())
	if err == nil {
		t.Errorf("ParseUDP on a cut quote succeeded: %v", u)
	}
	for n := range 28 {
		if _, err := wire.ParseIPv4Quote(body[:n]); !errors.Is(err, wire.ErrTruncated) {
			t.Errorf("quote[:%d]: err = %v, want ErrTruncated", n, err)
		}
	}
	// A datagram with less than 8 bytes of data is quoted whole.
	tiny := append([]byte(nil), body[:24]...)
	tiny[3] = 24
	if _, err := wire.ParseIPv4Quote(tiny); err != nil {
		t.Errorf("tiny quote: %v", err)
	}
	bad := append([]byte(nil), body...)
	bad[0] = 0x65
	if _, err := wire.ParseIPv4Quote(bad); !errors.Is(err, wire.ErrBadVersion) {
		t.Errorf("quote version 6: %v", err)
	}
	bad[0], bad[3] = 0x45, 19
	if _, err := wire.ParseIPv4Quote(bad); !errors.Is(err, wire.ErrBadLength) {
		t.Errorf("quote total length 19: %v", err)
	}
	bad[0] = 0x43
	if _, err := wire.ParseIPv4Quote(bad); !errors.Is(err, wire.ErrBadLength) {
		t.Errorf("quote IHL 3: %v", err)
	}
}

func TestIPv4PseudoHeader(t *testing.T) {
	h, _ := wire.ParseIPv4(ip(goldenSYN))
	tcp, _ := wire.ParseTCP(h.Payload())
	check(t, "TCP checksum via IPv4.PseudoHeaderChecksum", tcp.ChecksumValid(h.PseudoHeaderChecksum()), true)
}

func TestIPProtocolString(t *testing.T) {
	check(t, "tcp", wire.IPProtoTCP.String(), "tcp")
	check(t, "other", wire.IPProtocol(253).String(), "proto(253)")
}
