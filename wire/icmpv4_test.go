package wire_test

import (
	"errors"
	"net/netip"
	"testing"

	"ustack/wire"
)

func TestICMPv4Golden(t *testing.T) {
	for _, tc := range []struct {
		name  string
		frame []byte
		typ   wire.ICMPv4Type
		code  uint8
		csum  uint16
		rest  uint32
		isErr bool
	}{
		{"echo", goldenEchoRR, wire.ICMPv4Echo, 0, 0x300c, wire.EchoRest(0x2121, 1), false},
		{"echo reply", goldenEchoReplyRR, wire.ICMPv4EchoReply, 0, 0x380c, wire.EchoRest(0x2121, 1), false},
		{"echo no data", goldenEchoTS, wire.ICMPv4Echo, 0, 0xca22, wire.EchoRest(0x2ddc, 1), false},
		{"port unreachable", goldenPortUnreach, wire.ICMPv4DstUnreachable, wire.ICMPv4PortUnreachable, 0x111f, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := l4(tc.frame)
			m, err := wire.ParseICMPv4(raw)
			if err != nil {
				t.Fatal(err)
			}
			check(t, "Type", m.Type(), tc.typ)
			check(t, "Code", m.Code(), tc.code)
			check(t, "Checksum", m.Checksum(), tc.csum)
			check(t, "Rest", m.Rest(), tc.rest)
			check(t, "ChecksumValid", m.ChecksumValid(), true)
			check(t, "IsError", m.Type().IsError(), tc.isErr)
			checkBytes(t, "Payload", m.Payload(), raw[8:])
			if !tc.isErr {
				check(t, "ID", m.ID(), uint16(tc.rest>>16))
				check(t, "Seq", m.Seq(), uint16(tc.rest))
				if _, err := m.Quote(); !errors.Is(err, wire.ErrUnsupported) {
					t.Errorf("Quote on %v: %v", tc.typ, err)
				}
			}

			// Encode the header into 0xa5, copy the payload, then fix the
			// checksum: the result is the captured message.
			f := wire.ICMPv4Fields{Type: tc.typ, Code: tc.code, Rest: tc.rest}
			b := filled(len(raw))
			f.Encode(b)
			checkBytes(t, "Encode (checksum zero)", b[:f.Len()], append([]byte{raw[0], raw[1], 0, 0}, raw[4:8]...))
			copy(b[f.Len():], m.Payload())
			wire.ICMPv4(b).UpdateChecksum()
			checkBytes(t, "Encode + UpdateChecksum", b, raw)
		})
	}
}

func TestICMPv4Helpers(t *testing.T) {
	b := make([]byte, 8)
	(&wire.ICMPv4Fields{Type: wire.ICMPv4DstUnreachable, Code: wire.ICMPv4FragNeeded, Rest: 1400}).Encode(b)
	m, _ := wire.ParseICMPv4(b)
	check(t, "MTU", m.MTU(), 1400)
	(&wire.ICMPv4Fields{Type: wire.ICMPv4ParamProblem, Rest: 22 << 24}).Encode(b)
	check(t, "Pointer", m.Pointer(), 22)
	(&wire.ICMPv4Fields{Type: wire.ICMPv4Redirect, Code: 1, Rest: 0x0a000001}).Encode(b)
	check(t, "Gateway", m.Gateway(), netip.MustParseAddr("10.0.0.1"))
	m.SetType(wire.ICMPv4TimeExceeded)
	m.SetCode(wire.ICMPv4TTLExceeded)
	check(t, "Type", m.Type(), wire.ICMPv4TimeExceeded)
	check(t, "Code", m.Code(), 0)
	for typ, want := range map[wire.ICMPv4Type]string{
		wire.ICMPv4EchoReply: "echo-reply", wire.ICMPv4DstUnreachable: "dst-unreachable",
		wire.ICMPv4SourceQuench: "source-quench", wire.ICMPv4Redirect: "redirect",
		wire.ICMPv4Echo: "echo", wire.ICMPv4TimeExceeded: "time-exceeded",
		wire.ICMPv4ParamProblem: "param-problem", 42: "icmp-type(42)",
	} {
		check(t, "String", typ.String(), want)
	}
	for _, typ := range []wire.ICMPv4Type{wire.ICMPv4DstUnreachable, wire.ICMPv4SourceQuench, wire.ICMPv4Redirect, wire.ICMPv4TimeExceeded, wire.ICMPv4ParamProblem} {
		check(t, typ.String()+".IsError", typ.IsError(), true)
	}
}

func TestICMPv4Prefixes(t *testing.T) {
	raw := l4(goldenPortUnreach)
	for n := 0; n <= len(raw); n++ {
		m, err := wire.ParseICMPv4(raw[:n])
		if n < wire.ICMPv4HeaderLen {
			if !errors.Is(err, wire.ErrTruncated) {
				t.Errorf("[:%d]: err = %v, want ErrTruncated", n, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("[:%d]: %v", n, err)
		}
		// The quote needs the IP header and 8 bytes of the UDP header.
		_, err = m.Quote()
		if n < 8+20+8 && !errors.Is(err, wire.ErrTruncated) {
			t.Errorf("Quote on [:%d]: err = %v, want ErrTruncated", n, err)
		}
		if n >= 8+20+8 && err != nil {
			t.Errorf("Quote on [:%d]: %v", n, err)
		}
	}
}
