package wire_test

import (
	"errors"
	"testing"

	"ustack/wire"
)

// tcpFields reads a parsed segment back into fields.
func tcpFields(t *testing.T, s wire.TCP) wire.TCPFields {
	t.Helper()
	o, err := s.ParseOptions()
	if err != nil {
		t.Fatalf("ParseOptions: %v", err)
	}
	return wire.TCPFields{
		SrcPort: s.SrcPort(), DstPort: s.DstPort(), Seq: s.Seq(), Ack: s.Ack(),
		Flags: s.Flags(), Window: s.Window(), Checksum: s.Checksum(), Urgent: s.Urgent(),
		Options: o,
	}
}

func TestTCPGolden(t *testing.T) {
	for _, tc := range []struct {
		name    string
		frame   []byte
		want    wire.TCPFields
		hdrLen  int
		payload string
	}{
		{"Linux SYN", goldenSYN, wire.TCPFields{
			SrcPort: 52482, DstPort: 7777, Seq: 4000066790, Ack: 0, Flags: wire.TCPFlagSYN,
			Window: 64240, Checksum: 0x2415,
			Options: wire.TCPOptions{MSS: 1460, HasMSS: true, SACKPermitted: true,
				TSVal: 4016840401, TSEcr: 0, HasTimestamps: true, WScale: 10, HasWScale: true},
		}, 40, ""},
		{"RST|ACK", goldenRST, wire.TCPFields{
			SrcPort: 7777, DstPort: 52482, Seq: 0, Ack: 4000066791, Flags: wire.TCPFlagRST | wire.TCPFlagACK,
			Window: 0, Checksum: 0x9516,
		}, 20, ""},
		{"data with timestamps", goldenTCPData, wire.TCPFields{
			SrcPort: 50092, DstPort: 8080, Seq: 3584664929, Ack: 3037596089, Flags: wire.TCPFlagPSH | wire.TCPFlagACK,
			Window: 64, Checksum: 0xcdae,
			Options: wire.TCPOptions{TSVal: 1579478222, TSEcr: 2295875452, HasTimestamps: true},
		}, 32, "hi\n"},
		{"SACK", goldenSACK, wire.TCPFields{
			SrcPort: 7777, DstPort: 52482, Seq: 0x1000, Ack: 0x2000, Flags: wire.TCPFlagACK,
			Window: 502, Checksum: 0x5525,
			Options: wire.TCPOptions{TSVal: 0x01020304, TSEcr: 0x05060708, HasTimestamps: true,
				NumSACK: 2, SACK: [4]wire.SACKBlock{{0x2100, 0x2200}, {0x2300, 0x2400}}},
		}, 52, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := wire.ParseIPv4(ip(tc.frame))
			if err != nil {
				t.Fatal(err)
			}
			s, err := wire.ParseTCP(h.Payload())
			if err != nil {
				t.Fatal(err)
			}
			if d := diff(tc.want, tcpFields(t, s)); d != "" {
				t.Errorf("fields %s", d)
			}
			check(t, "HeaderLen", s.HeaderLen(), tc.hdrLen)
			check(t, "DataOffset", s.DataOffset(), uint8(tc.hdrLen/4))
			check(t, "len(Options)", len(s.Options()), tc.hdrLen-20)
			check(t, "Payload", string(s.Payload()), tc.payload)
			check(t, "ChecksumValid", s.ChecksumValid(h.PseudoHeaderChecksum()), true)

			// Encode into 0xa5: the header and options come out byte for
			// byte as captured (Linux's option layout).
			b := filled(tc.want.Len() + len(tc.payload))
			check(t, "Len", tc.want.Len(), tc.hdrLen)
			tc.want.Encode(b)
			checkBytes(t, "Encode", b[:tc.want.Len()], s[:tc.hdrLen])

			// Checksum from scratch.
			copy(b[tc.want.Len():], tc.payload)
			seg := wire.TCP(b)
			seg.SetChecksum(0xdead)
			seg.UpdateChecksum(h.PseudoHeaderChecksum())
			check(t, "UpdateChecksum", seg.Checksum(), tc.want.Checksum)
		})
	}
}

func TestTCPSetters(t *testing.T) {
	var f wire.TCPFields
	b := filled(f.Len())
	f.Encode(b)
	checkBytes(t, "zero fields", b, []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0, 0, 0, 0, 0, 0, 0})
	s, err := wire.ParseTCP(b)
	if err != nil {
		t.Fatal(err)
	}
	s.SetSrcPort(1)
	s.SetDstPort(2)
	s.SetSeq(3)
	s.SetAck(4)
	s.SetFlags(wire.TCPFlagFIN | wire.TCPFlagURG)
	s.SetWindow(5)
	s.SetChecksum(6)
	s.SetUrgent(7)
	checkBytes(t, "after setters", b, []byte{0, 1, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0x50, 0x21, 0, 5, 0, 6, 0, 7})
}

func TestTCPFlags(t *testing.T) {
	for _, tc := range []struct {
		f    wire.TCPFlags
		want string
	}{
		{0, "none"},
		{wire.TCPFlagSYN, "SYN"},
		{wire.TCPFlagSYN | wire.TCPFlagACK, "SYN|ACK"},
		{0xff, "FIN|SYN|RST|PSH|ACK|URG|ECE|CWR"},
	} {
		check(t, "String", tc.f.String(), tc.want)
	}
	f := wire.TCPFlagSYN | wire.TCPFlagACK
	check(t, "Has(SYN)", f.Has(wire.TCPFlagSYN), true)
	check(t, "Has(SYN|ACK)", f.Has(wire.TCPFlagSYN|wire.TCPFlagACK), true)
	check(t, "Has(SYN|FIN)", f.Has(wire.TCPFlagSYN|wire.TCPFlagFIN), false)
	// Bit positions (RFC 9293 §3.1, RFC 3168 §6.1).
	check(t, "CWR", wire.TCPFlagCWR, 0x80)
	check(t, "ECE", wire.TCPFlagECE, 0x40)
	check(t, "URG", wire.TCPFlagURG, 0x20)
	check(t, "ACK", wire.TCPFlagACK, 0x10)
	check(t, "PSH", wire.TCPFlagPSH, 0x08)
	check(t, "RST", wire.TCPFlagRST, 0x04)
}

func TestTCPErrors(t *testing.T) {
	syn := l4(goldenSYN)
	// Every prefix shorter than the 40-byte header fails with ErrTruncated;
	// TCP has no length field, so the full header parses.
	for n := range 40 {
		if _, err := wire.ParseTCP(syn[:n]); !errors.Is(err, wire.ErrTruncated) {
			t.Errorf("[:%d]: err = %v, want ErrTruncated", n, err)
		}
	}
	for doff := range 16 {
		b := append(append([]byte(nil), syn...), make([]byte, 20)...) // 60 bytes
		b[12] = byte(doff << 4)
		_, err := wire.ParseTCP(b)
		switch {
		case doff < 5 && !errors.Is(err, wire.ErrBadLength):
			t.Errorf("data offset %d: err = %v, want ErrBadLength", doff, err)
		case doff >= 5 && err != nil:
			t.Errorf("data offset %d: %v", doff, err)
		}
		if doff >= 5 {
			if _, err := wire.ParseTCP(b[:doff*4-1]); !errors.Is(err, wire.ErrTruncated) {
				t.Errorf("data offset %d, one byte short: %v", doff, err)
			}
		}
	}
	// Reserved bits are ignored on receive (RFC 9293 §3.1).
	b := append([]byte(nil), syn...)
	b[12] |= 0x0f
	if s, err := wire.ParseTCP(b); err != nil || s.HeaderLen() != 40 {
		t.Errorf("reserved bits: %v", err)
	}
	// A corrupted segment fails the checksum.
	h, _ := wire.ParseIPv4(ip(goldenSYN))
	b[12] = syn[12]
	b[20]++
	if wire.TCP(b).ChecksumValid(h.PseudoHeaderChecksum()) {
		t.Error("ChecksumValid after corrupting an option")
	}
}
