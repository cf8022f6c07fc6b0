package wire_test

import (
	"errors"
	"testing"

	"ustack/wire"
)

func TestUDPGolden(t *testing.T) {
	h, _ := wire.ParseIPv4(ip(goldenUDP))
	raw := h.Payload()
	u, err := wire.ParseUDP(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := wire.UDPFields{SrcPort: 40000, DstPort: 9, Length: 14, Checksum: 0x0baa}
	got := wire.UDPFields{SrcPort: u.SrcPort(), DstPort: u.DstPort(), Length: u.Length(), Checksum: u.Checksum()}
	if d := diff(want, got); d != "" {
		t.Errorf("fields %s", d)
	}
	checkBytes(t, "Payload", u.Payload(), []byte("hello\n"))

	b := filled(want.Len() + len(u.Payload()))
	want.Encode(b)
	checkBytes(t, "Encode", b[:8], raw[:8])

	// Rebuild the checksum the way a sender does.
	copy(b[8:], "hello\n")
	wire.UDP(b).SetChecksum(0)
	c := wire.UDPChecksum(h.PseudoHeaderChecksum(), wire.Checksum(b, 0))
	check(t, "UDPChecksum", c, 0x0baa)
}

// TestUDPChecksumZero: a computed checksum of zero goes out as 0xffff
// (RFC 768).
func TestUDPChecksumZero(t *testing.T) {
	// pseudo + datagram = 0xffff, so the complement is zero.
	check(t, "UDPChecksum", wire.UDPChecksum(0xfff0, 0x000f), 0xffff)
	check(t, "UDPChecksum", wire.UDPChecksum(0x1234, 0x0001), ^uint16(0x1235))
}

func TestUDPErrors(t *testing.T) {
	raw := l4(goldenUDP)
	for n := range len(raw) {
		if _, err := wire.ParseUDP(raw[:n]); !errors.Is(err, wire.ErrTruncated) {
			t.Errorf("[:%d]: err = %v, want ErrTruncated", n, err)
		}
	}
	bad := append([]byte(nil), raw...)
	bad[5] = 7
	if _, err := wire.ParseUDP(bad); !errors.Is(err, wire.ErrBadLength) {
		t.Errorf("length 7: %v", err)
	}
	// The view is cut to the length field (padding dropped).
	long := append(append([]byte(nil), raw...), 0, 0, 0)
	if u, err := wire.ParseUDP(long); err != nil || len(u) != 14 || len(u.Payload()) != 6 {
		t.Errorf("padded: %d bytes, %v", len(u), err)
	}
}
