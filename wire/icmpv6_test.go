package wire_test

import (
	"errors"
	"testing"

	"ustack/wire"
)

func TestICMPv6Golden(t *testing.T) {
	for _, tc := range []struct {
		name  string
		frame []byte
		typ   wire.ICMPv6Type
		code  uint8
		csum  uint16
		rest  uint32
	}{
		{"echo request", goldenEcho6, wire.ICMPv6EchoRequest, 0, 0xa9f7, wire.EchoRest(0x565a, 1)},
		{"echo reply", goldenEchoReply6, wire.ICMPv6EchoReply, 0, 0xa8f7, wire.EchoRest(0x565a, 1)},
		{"port unreachable", goldenPortUnreach6, wire.ICMPv6DstUnreachable, wire.ICMPv6PortUnreachable, 0x3a90, 0},
		{"hop limit exceeded", goldenTimeExceeded6, wire.ICMPv6TimeExceeded, wire.ICMPv6HopLimitExceeded, 0xc3bf, 0},
		{"unrecognized option", goldenParamOption, wire.ICMPv6ParamProblem, wire.ICMPv6UnrecognizedOption, 0x3ecb, 42},
		{"erroneous header", goldenParamHeader, wire.ICMPv6ParamProblem, wire.ICMPv6ErroneousHeader, 0xacf9, 42},
		{"unrecognized next header", goldenParamNextHeader, wire.ICMPv6ParamProblem, wire.ICMPv6UnrecognizedNextHeader, 0x4e53, 6},
		{"NS", goldenNS, wire.ICMPv6NeighborSolicit, 0, 0x1c27, 0},
		{"NA", goldenNA, wire.ICMPv6NeighborAdvert, 0, 0x0a71, 0xe0000000},
		{"RA", goldenRA, wire.ICMPv6RouterAdvert, 0, 0xb37d, 0x40400708},
		{"RS", goldenRSNoOpt, wire.ICMPv6RouterSolicit, 0, 0x7e36, 0},
		{"redirect", goldenRedirect, wire.ICMPv6Redirect, 0, 0x72a0, 0},
		{"MLDv2 report", goldenMLDv2Report, wire.ICMPv6MLDv2Report, 0, 0x7207, 1},
		{"MLDv1 report", goldenMLDv1Report, wire.ICMPv6MLDReport, 0, 0x831f, 0},
		{"MLDv2 query", goldenMLDv2Query, wire.ICMPv6MLDQuery, 0, 0x5784, 0x27100000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := wire.ParseIPv6(ip6(tc.frame))
			if err != nil {
				t.Fatal(err)
			}
			raw := icmp6(tc.frame)
			m, err := wire.ParseICMPv6(raw)
			if err != nil {
				t.Fatal(err)
			}
			check(t, "Type", m.Type(), tc.typ)
			check(t, "Code", m.Code(), tc.code)
			check(t, "Checksum", m.Checksum(), tc.csum)
			check(t, "Rest", m.Rest(), tc.rest)
			check(t, "ChecksumValid", m.ChecksumValid(h.Src(), h.Dst()), true)
			check(t, "ChecksumValid (addresses swapped is fine, sum commutes)", m.ChecksumValid(h.Dst(), h.Src()), true)
			check(t, "ChecksumValid (wrong address)", m.ChecksumValid(h.Src(), a6two.Next()), false)
			check(t, "IsError", m.Type().IsError(), tc.typ < 128)
			checkBytes(t, "Payload", m.Payload(), raw[8:])
			checkBytes(t, "Body", m.Body(), raw[4:])

			// Encode the header into 0xa5, copy the payload, fix the
			// checksum: the result is the captured message.
			f := wire.ICMPv6Fields{Type: tc.typ, Code: tc.code, Rest: tc.rest}
			b := filled(len(raw))
			f.Encode(b)
			checkBytes(t, "Encode (checksum zero)", b[:f.Len()], append([]byte{raw[0], raw[1], 0, 0}, raw[4:8]...))
			copy(b[f.Len():], m.Payload())
			wire.ICMPv6(b).UpdateChecksum(h.Src(), h.Dst())
			checkBytes(t, "Encode + UpdateChecksum", b, raw)

			// A flipped bit anywhere breaks the checksum.
			b[len(b)-1] ^= 0x10
			check(t, "ChecksumValid after corruption", wire.ICMPv6(b).ChecksumValid(h.Src(), h.Dst()), false)
		})
	}
}

// TestICMPv6Quote: errors quote the invoking packet, cut as RFC 4443 §2.4
// (c) allows; the quote is enough to find the UDP ports and the echo ID.
func TestICMPv6Quote(t *testing.T) {
	m, _ := wire.ParseICMPv6(icmp6(goldenPortUnreach6))
	q, err := m.Quote()
	if err != nil {
		t.Fatal(err)
	}
	checkBytes(t, "quoted header", q.Header(), ip6(goldenUDP6)[:40])
	check(t, "quoted packet length", len(q.Packet()), 40+14)
	check(t, "quoted Src", q.Src(), a6one)
	check(t, "quoted NextHeader", q.NextHeader(), wire.IPProtoUDP)
	u, err := wire.ParseUDP(q.Payload())
	if err != nil {
		t.Fatal(err)
	}
	check(t, "quoted ports", [2]uint16{u.SrcPort(), u.DstPort()}, [2]uint16{37371, 9})

	// Packet too big from the pcap: 1280-byte error quoting 1232 of 1448.
	frames := readPcap(t, "ipv6_large.pcap")
	h, err := wire.ParseIPv6(ip6(frames[pcapPTB]))
	if err != nil {
		t.Fatal(err)
	}
	check(t, "PTB packet length", len(h.Packet()), wire.IPv6MinMTU)
	m, err = wire.ParseICMPv6(h.Payload())
	if err != nil {
		t.Fatal(err)
	}
	check(t, "PTB Type", m.Type(), wire.ICMPv6PacketTooBig)
	check(t, "PTB MTU", m.MTU(), 1280)
	check(t, "PTB checksum", m.ChecksumValid(h.Src(), h.Dst()), true)
	check(t, "PTB quote length", len(m.Payload()), wire.ICMPv6ErrorQuoteLen)
	q, err = m.Quote()
	if err != nil {
		t.Fatal(err)
	}
	check(t, "quoted PayloadLen", q.PayloadLen(), 1408)
	checkBytes(t, "quoted bytes", q.Packet(), ip6(frames[pcapBigEcho])[:wire.ICMPv6ErrorQuoteLen])
	qm, err := wire.ParseICMPv6(q.Payload())
	if err != nil {
		t.Fatal(err)
	}
	check(t, "quoted echo ID", qm.ID(), 0x565e)
	check(t, "quoted echo Seq", qm.Seq(), 1)

	m, _ = wire.ParseICMPv6(icmp6(goldenEcho6))
	if _, err := m.Quote(); !errors.Is(err, wire.ErrUnsupported) {
		t.Errorf("Quote on echo: %v", err)
	}
}

func TestICMPv6Prefixes(t *testing.T) {
	raw := icmp6(goldenTimeExceeded6)
	for n := 0; n <= len(raw); n++ {
		m, err := wire.ParseICMPv6(raw[:n])
		if n < wire.ICMPv6HeaderLen {
			if !errors.Is(err, wire.ErrTruncated) {
				t.Errorf("[:%d]: err = %v, want ErrTruncated", n, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("[:%d]: %v", n, err)
		}
		_, err = m.Quote()
		if n < 8+40 && !errors.Is(err, wire.ErrTruncated) || n >= 8+40 && err != nil {
			t.Errorf("Quote on [:%d]: %v", n, err)
		}
	}
	// An unknown type needs only type, code and checksum, and its
	// accessors do not panic.
	m, err := wire.ParseICMPv6([]byte{200, 1, 0, 0})
	if err != nil {
		t.Fatal(err)
	}
	check(t, "Rest of a 4-byte message", m.Rest(), 0)
	check(t, "Payload of a 4-byte message", len(m.Payload()), 0)
	check(t, "Body of a 4-byte message", len(m.Body()), 0)
	if _, err := wire.ParseICMPv6([]byte{200, 1, 0}); !errors.Is(err, wire.ErrTruncated) {
		t.Errorf("3 bytes: %v", err)
	}
	for _, typ := range []wire.ICMPv6Type{1, 2, 3, 4, 128, 129, 130, 131, 132, 133, 134, 135, 136, 137, 143} {
		if _, err := wire.ParseICMPv6([]byte{uint8(typ), 0, 0, 0, 0, 0, 0}); !errors.Is(err, wire.ErrTruncated) {
			t.Errorf("%v in 7 bytes: %v", typ, err)
		}
	}
}

func TestICMPv6Helpers(t *testing.T) {
	b := make([]byte, 8)
	(&wire.ICMPv6Fields{Type: wire.ICMPv6ParamProblem, Code: wire.ICMPv6IncompleteChain, Rest: 0x12345678}).Encode(b)
	m, _ := wire.ParseICMPv6(b)
	check(t, "Pointer", m.Pointer(), 0x12345678)
	check(t, "Code", m.Code(), 3)
	m.SetType(wire.ICMPv6EchoReply)
	m.SetCode(7)
	m.SetChecksum(0xbeef)
	check(t, "Type", m.Type(), wire.ICMPv6EchoReply)
	check(t, "Code", m.Code(), 7)
	check(t, "Checksum", m.Checksum(), 0xbeef)
	check(t, "ID", m.ID(), 0x1234)
	check(t, "Seq", m.Seq(), 0x5678)
	for typ, want := range map[wire.ICMPv6Type]string{
		1: "dst-unreachable", 2: "packet-too-big", 3: "time-exceeded", 4: "param-problem",
		128: "echo-request", 129: "echo-reply", 130: "mld-query", 131: "mld-report", 132: "mld-done",
		133: "router-solicitation", 134: "router-advertisement", 135: "neighbor-solicitation",
		136: "neighbor-advertisement", 137: "redirect", 143: "mldv2-report", 200: "icmp6-type(200)",
	} {
		check(t, "String", typ.String(), want)
		check(t, want+" IsError", typ.IsError(), typ < 128)
	}
	check(t, "ICMPv6ErrorQuoteLen", wire.ICMPv6ErrorQuoteLen, 1232)
}
