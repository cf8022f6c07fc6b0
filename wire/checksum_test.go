package wire_test

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"ustack/wire"
)

// naiveSum is RFC 1071 §4.1 written the slow, obvious way: 16-bit words,
// carries folded at the end.
func naiveSum(b []byte, initial uint16) uint16 {
	sum := uint32(initial)
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum)
}

func TestChecksumRFC1071(t *testing.T) {
	// RFC 1071 §3, numerical example: the words 0001 f203 f4f5 f6f7 sum to
	// 0xddf2 (carries folded); the checksum field would be ^0xddf2.
	b := []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}
	check(t, "Checksum", wire.Checksum(b, 0), 0xddf2)
	// Byte-order independence (§2(B)): swapping every pair swaps the sum.
	sw := []byte{0x01, 0x00, 0x03, 0xf2, 0xf5, 0xf4, 0xf7, 0xf6}
	check(t, "Checksum(swapped)", wire.Checksum(sw, 0), 0xf2dd)
	// Parallel summation (§2(C)): the sum of halves combines.
	check(t, "Combine", wire.ChecksumCombine(wire.Checksum(b[:4], 0), wire.Checksum(b[4:], 0)), 0xddf2)
	// initial is added.
	check(t, "Checksum(initial)", wire.Checksum(b[:4], wire.Checksum(b[4:], 0)), 0xddf2)
}

func TestChecksumEdges(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
		want uint16
	}{
		{"empty", nil, 0},
		{"one byte is the high half", []byte{0xab}, 0xab00},
		{"odd length", []byte{0x00, 0x01, 0xf2}, 0xf201},
		{"all ones", []byte{0xff, 0xff, 0xff, 0xff}, 0xffff},
		{"carry wraps", []byte{0xff, 0xff, 0x00, 0x01}, 0x0001},
	} {
		if got := wire.Checksum(tc.b, 0); got != tc.want {
			t.Errorf("%s: Checksum = %#04x, want %#04x", tc.name, got, tc.want)
		}
	}
}

// TestChecksumVsNaive checks the unrolled sum against the obvious one for
// every length up to 300 (all tails of the 32- and 4-byte loops, odd
// lengths) and every alignment.
func TestChecksumVsNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 310)
	for i := range buf {
		buf[i] = byte(r.Uint32())
	}
	for off := range 4 {
		for n := 0; n <= 300; n++ {
			b := buf[off : off+n]
			init := uint16(r.Uint32())
			if got, want := wire.Checksum(b, init), naiveSum(b, init); got != want {
				t.Fatalf("off %d len %d: Checksum = %#04x, naive %#04x", off, n, got, want)
			}
		}
	}
	// Many carries: all 0xff.
	ff := make([]byte, 65536)
	for i := range ff {
		ff[i] = 0xff
	}
	check(t, "Checksum(64K of 0xff)", wire.Checksum(ff, 0xffff), naiveSum(ff, 0xffff))
}

// TestChecksumGolden verifies captured packets: a header that holds its
// own checksum sums to 0xffff.
func TestChecksumGolden(t *testing.T) {
	for _, tc := range []struct {
		name  string
		frame []byte
	}{
		{"echo RR", goldenEchoRR}, {"echo reply RR", goldenEchoReplyRR},
		{"UDP", goldenUDP}, {"port unreachable", goldenPortUnreach},
		{"SYN", goldenSYN}, {"RST", goldenRST}, {"IGMP RA", goldenIGMPRA},
		{"SACK", goldenSACK}, {"TCP data", goldenTCPData},
	} {
		h := ip(tc.frame)
		hl := int(h[0]&0xf) * 4
		if got := wire.Checksum(h[:hl], 0); got != 0xffff {
			t.Errorf("%s: IPv4 header sums to %#04x", tc.name, got)
		}
	}
}

func TestPseudoHeaderChecksum(t *testing.T) {
	// IPv4: goldenUDP's checksum verifies against our pseudo-header.
	src, dst := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	u := l4(goldenUDP)
	ph := wire.PseudoHeaderChecksum(wire.IPProtoUDP, src, dst, len(u))
	check(t, "UDP sum", wire.ChecksumCombine(ph, wire.Checksum(u, 0)), 0xffff)
	// And it equals the sum of the pseudo-header laid out by hand
	// (RFC 768): src, dst, zero, protocol, length.
	pseudo := []byte{10, 0, 0, 1, 10, 0, 0, 2, 0, 17, 0, byte(len(u))}
	check(t, "v4 pseudo vs naive", ph, naiveSum(pseudo, 0))

	// IPv6 (RFC 8200 §8.1): src, dst, 32-bit length, 3 zero bytes, next
	// header. goldenIPv6RS is an ICMPv6 message whose checksum covers it.
	v6 := goldenIPv6RS[14:]
	s6 := netip.AddrFrom16([16]byte(v6[8:24]))
	d6 := netip.AddrFrom16([16]byte(v6[24:40]))
	msg := v6[40:]
	ph6 := wire.PseudoHeaderChecksum(wire.IPProtoICMPv6, s6, d6, len(msg))
	check(t, "ICMPv6 sum", wire.ChecksumCombine(ph6, wire.Checksum(msg, 0)), 0xffff)
	var p6 []byte
	p6 = append(p6, v6[8:40]...)
	p6 = binary.BigEndian.AppendUint32(p6, uint32(len(msg)))
	p6 = append(p6, 0, 0, 0, 58)
	check(t, "v6 pseudo vs naive", ph6, naiveSum(p6, 0))

	// IPv6 length above 65535 (jumbogram) lands in the upper word.
	big := 0x12345
	p6 = append(p6[:32], 0, 1, 0x23, 0x45, 0, 0, 0, 6)
	check(t, "v6 jumbo", wire.PseudoHeaderChecksum(wire.IPProtoTCP, s6, d6, big), naiveSum(p6, 0))
}

func TestChecksumUpdateRFC1624(t *testing.T) {
	// RFC 1624 §4: HC 0xdd2f, m 0x5555 -> m' 0x3285 gives HC' 0x0000 with
	// eqn. 3 (eqn. 2 would wrongly give 0xffff).
	check(t, "ChecksumUpdate16", wire.ChecksumUpdate16(0xdd2f, 0x5555, 0x3285), 0x0000)
}

// TestChecksumUpdateRandom changes random words of random headers and
// compares the incremental update with a full recompute (RFC 1624). Word 0
// is the checksum field; word 1 is never zero and never changed, as the
// version/IHL and TOS word of an IPv4 header (RFC 1624 eqn. 3 and a full
// recompute disagree, 0x0000 against 0xffff, only over all-zero data).
func TestChecksumUpdateRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for iter := range 50000 {
		n := 2 * (4 + r.IntN(40))
		b := make([]byte, n)
		for i := range b {
			switch r.IntN(4) {
			case 0:
				b[i] = 0
			case 1:
				b[i] = 0xff
			default:
				b[i] = byte(r.Uint32())
			}
		}
		b[0], b[1], b[2] = 0, 0, 0x45
		field := ^wire.Checksum(b, 0)
		binary.BigEndian.PutUint16(b, field)

		var what string
		if r.IntN(2) == 0 {
			i := 4 + 2*r.IntN(n/2-2)
			old := binary.BigEndian.Uint16(b[i:])
			nw := uint16(r.Uint32())
			switch r.IntN(4) {
			case 0:
				nw = ^old
			case 1:
				nw = 0
			}
			binary.BigEndian.PutUint16(b[i:], nw)
			field = wire.ChecksumUpdate16(field, old, nw)
			what = fmt.Sprintf("word %d %#04x -> %#04x", i, old, nw)
		} else {
			i := 4 + 2*r.IntN(n/2-3)
			old := binary.BigEndian.Uint32(b[i:])
			nw := r.Uint32()
			if r.IntN(4) == 0 {
				nw = ^old
			}
			binary.BigEndian.PutUint32(b[i:], nw)
			field = wire.ChecksumUpdate32(field, old, nw)
			what = fmt.Sprintf("dword %d %#08x -> %#08x", i, old, nw)
		}
		binary.BigEndian.PutUint16(b, 0)
		want := ^wire.Checksum(b, 0)
		if field != want {
			t.Fatalf("iter %d, %s: incremental %#04x, full %#04x (% x)", iter, what, field, want, b)
		}
	}
}

func TestDecrementTTL(t *testing.T) {
	b := append([]byte(nil), ip(goldenUDP)...)
	h, err := wire.ParseIPv4(b)
	if err != nil {
		t.Fatal(err)
	}
	h.DecrementTTL()
	check(t, "TTL", h.TTL(), 63)
	check(t, "ChecksumValid", h.ChecksumValid(), true)
	c := h.Checksum()
	h.UpdateChecksum()
	check(t, "incremental vs full", c, h.Checksum())
}
