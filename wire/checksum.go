package wire

import (
	"encoding/binary"
	"net/netip"
)

// Checksum returns the ones'-complement sum of b folded to 16 bits, added to
// initial (RFC 1071 §4). It is not complemented: the checksum field holds
// ^Checksum(...). An odd final byte is padded with zero.
func Checksum(b []byte, initial uint16) uint16 {
	sum := uint64(initial)
	for len(b) >= 32 {
		sum += uint64(binary.BigEndian.Uint32(b[0:]))
		sum += uint64(binary.BigEndian.Uint32(b[4:]))
		sum += uint64(binary.BigEndian.Uint32(b[8:]))
		sum += uint64(binary.BigEndian.Uint32(b[12:]))
		sum += uint64(binary.BigEndian.Uint32(b[16:]))
		sum += uint64(binary.BigEndian.Uint32(b[20:]))
		sum += uint64(binary.BigEndian.Uint32(b[24:]))
		sum += uint64(binary.BigEndian.Uint32(b[28:]))
		b = b[32:]
	}
	for len(b) >= 4 {
		sum += uint64(binary.BigEndian.Uint32(b))
		b = b[4:]
	}
	if len(b) >= 2 {
		sum += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint64(b[0]) << 8
	}
	return fold(sum)
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
