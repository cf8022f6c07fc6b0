package wire

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// Checksum returns the ones'-complement sum of b folded to 16 bits, added to
// initial (RFC 1071 §4). It is not complemented: the checksum field holds
// ^Checksum(...). An odd final byte is padded with zero.
//
// It sums 64-bit words with an end-around carry (RFC 1071 §2(C): the sum
// may be computed in a wider ones'-complement accumulator and folded at
// the end), loaded in little-endian order, and swaps the folded result
// once: the sum is byte-order independent (RFC 1071 §2(B)), so no word
// needs swapping on its own.
func Checksum(b []byte, initial uint16) uint16 {
	var s, c uint64
	for len(b) >= 64 {
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[0:]), c)
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[8:]), c)
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[16:]), c)
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[24:]), c)
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[32:]), c)
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[40:]), c)
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[48:]), c)
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b[56:]), c)
		b = b[64:]
	}
	for len(b) >= 8 {
		s, c = bits.Add64(s, binary.LittleEndian.Uint64(b), c)
		b = b[8:]
	}
	// The tail, under 8 bytes, fits a word of its own (< 2^34).
	var t uint64
	if len(b) >= 4 {
		t += uint64(binary.LittleEndian.Uint32(b))
		b = b[4:]
	}
	if len(b) >= 2 {
		t += uint64(binary.LittleEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		t += uint64(b[0]) // the low byte of a little-endian word
	}
	s, c = bits.Add64(s, t, c)
	s, c = bits.Add64(s, 0, c)
	s += c // cannot carry again: s is 0 if the last add carried
	folded := fold((s >> 32) + (s & 0xffffffff))
	return fold(uint64(bits.ReverseBytes16(folded)) + uint64(initial))
}

// ChecksumCombine adds two partial sums (ones'-complement addition).
func ChecksumCombine(a, b uint16) uint16 { return fold(uint64(a) + uint64(b)) }

func fold(sum uint64) uint16 {
	for sum > 0xffff {
		sum = (sum & 0xffff) + (sum >> 16)
	}
	return uint16(sum)
}

// PseudoHeaderChecksum is the partial sum of the IPv4 or IPv6 pseudo-header
// (RFC 768, RFC 9293 §3.1, RFC 8200 §8.1) for a transport segment of length
// n. src and dst must be the same family.
func PseudoHeaderChecksum(proto IPProtocol, src, dst netip.Addr, n int) uint16 {
	var sum uint64
	if src.Is4() {
		s, d := src.As4(), dst.As4()
		sum += uint64(binary.BigEndian.Uint16(s[0:])) + uint64(binary.BigEndian.Uint16(s[2:]))
		sum += uint64(binary.BigEndian.Uint16(d[0:])) + uint64(binary.BigEndian.Uint16(d[2:]))
	} else {
		s, d := src.As16(), dst.As16()
		for i := 0; i < 16; i += 2 {
			sum += uint64(binary.BigEndian.Uint16(s[i:])) + uint64(binary.BigEndian.Uint16(d[i:]))
		}
	}
	sum += uint64(proto) + uint64(uint32(n)>>16) + uint64(uint16(n))
	return fold(sum)
}

// ChecksumUpdate16 returns the checksum field value after a 16-bit word
// covered by it changes from old to new, without recomputing (RFC 1624 §3,
// eqn. 3: HC' = ~(~HC + ~m + m')). Like a full recompute it never turns a
// nonzero sum into -0; the two differ (0x0000 against 0xffff, both valid
// in ones' complement) only when every other covered word is zero, which no
// IPv4, TCP or UDP header is.
func ChecksumUpdate16(field, old, new uint16) uint16 {
	sum := uint64(^field) + uint64(^old) + uint64(new)
	return ^fold(sum)
}

// ChecksumUpdate32 is ChecksumUpdate16 for a 32-bit word (such as an IPv4
// address, for NAT).
func ChecksumUpdate32(field uint16, old, new uint32) uint16 {
	field = ChecksumUpdate16(field, uint16(old>>16), uint16(new>>16))
	return ChecksumUpdate16(field, uint16(old), uint16(new))
}
