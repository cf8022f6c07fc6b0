package wire_test

import (
	"errors"
	"net/netip"
	"testing"

	"ustack/wire"
)

func TestARPGolden(t *testing.T) {
	for _, tc := range []struct {
		name  string
		frame []byte
		want  wire.ARPFields
	}{
		{"request", goldenARPRequest, wire.ARPFields{
			Op:        wire.ARPRequest,
			SenderMAC: wire.MAC{2, 0, 0, 0, 0, 1}, SenderIP: netip.MustParseAddr("10.0.0.1"),
			TargetMAC: wire.MAC{}, TargetIP: netip.MustParseAddr("10.0.0.2"),
		}},
		{"reply", goldenARPReply, wire.ARPFields{
			Op:        wire.ARPReply,
			SenderMAC: wire.MAC{2, 0, 0, 0, 0, 2}, SenderIP: netip.MustParseAddr("10.0.0.2"),
			TargetMAC: wire.MAC{2, 0, 0, 0, 0, 1}, TargetIP: netip.MustParseAddr("10.0.0.1"),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := wire.ParseARP(tc.frame[14:])
			if err != nil {
				t.Fatal(err)
			}
			got := wire.ARPFields{Op: a.Op(), SenderMAC: a.SenderMAC(), SenderIP: a.SenderIP(), TargetMAC: a.TargetMAC(), TargetIP: a.TargetIP()}
			if d := diff(tc.want, got); d != "" {
				t.Errorf("fields %s", d)
			}
			b := filled(tc.want.Len() + 4)
			tc.want.Encode(b)
			checkBytes(t, "Encode", b[:wire.ARPLen], tc.frame[14:])
			checkBytes(t, "beyond Len", b[wire.ARPLen:], filled(4))
		})
	}
	check(t, "ARPOp.String", wire.ARPRequest.String(), "request")
	check(t, "ARPOp.String", wire.ARPOp(9).String(), "arp-op(9)")
}

// TestARPProbe encodes an ARP probe (RFC 5227 §2.1.1): the sender IP is
// left as the zero netip.Addr and must come out as 0.0.0.0.
func TestARPProbe(t *testing.T) {
	f := wire.ARPFields{Op: wire.ARPRequest, SenderMAC: wire.MAC{2, 0, 0, 0, 0, 1}, TargetIP: netip.MustParseAddr("10.0.0.2")}
	b := filled(wire.ARPLen)
	f.Encode(b)
	checkBytes(t, "sender IP", b[14:18], []byte{0, 0, 0, 0})
	checkBytes(t, "target MAC", b[18:24], make([]byte, 6))
	a, err := wire.ParseARP(b)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "SenderIP", a.SenderIP(), netip.IPv4Unspecified())
}

func TestARPErrors(t *testing.T) {
	body := goldenARPRequest[14:]
	for n := range wire.ARPLen {
		if _, err := wire.ParseARP(body[:n]); !errors.Is(err, wire.ErrTruncated) {
			t.Errorf("prefix %d: err = %v, want ErrTruncated", n, err)
		}
	}
	// Trailing Ethernet padding is cut off.
	padded := append(append([]byte(nil), body...), make([]byte, 18)...)
	if a, err := wire.ParseARP(padded); err != nil || len(a) != wire.ARPLen {
		t.Errorf("padded: len %d, %v", len(a), err)
	}
	for _, tc := range []struct {
		name string
		off  int
		val  byte
		want error
	}{
		{"hardware type 6", 1, 6, wire.ErrUnsupported},
		{"protocol IPv6", 2, 0x86, wire.ErrUnsupported},
		{"hlen 8", 4, 8, wire.ErrBadLength},
		{"plen 16", 5, 16, wire.ErrBadLength},
	} {
		b := append([]byte(nil), body...)
		b[tc.off] = tc.val
		if _, err := wire.ParseARP(b); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
}
