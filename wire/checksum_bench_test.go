package wire_test

import (
	"encoding/binary"
	"fmt"
	"testing"

	"ustack/wire"
)

// BenchmarkChecksum: RFC 1071 sum over a 1500-byte frame and a 64 KiB
// segment (and an odd-aligned 1500 bytes: views often start at odd
// addresses after header trims).
func BenchmarkChecksum(b *testing.B) {
	for _, tc := range []struct {
		n, off int
	}{{20, 0}, {1500, 0}, {1500, 1}, {65536, 0}} {
		b.Run(fmt.Sprintf("%d+%d", tc.n, tc.off), func(b *testing.B) {
			buf := make([]byte, tc.n+tc.off)
			for i := range buf {
				buf[i] = byte(i * 7)
			}
			p := buf[tc.off:]
			b.SetBytes(int64(tc.n))
			var s uint16
			for b.Loop() {
				s += wire.Checksum(p, 0)
			}
			sink16 = s
		})
	}
}

var sink16 uint16

// checksum32 is the previous implementation (32-bit words into a 64-bit
// accumulator), kept to compare against in the same run.
func checksum32(b []byte, initial uint16) uint16 {
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
	for sum > 0xffff {
		sum = (sum & 0xffff) + (sum >> 16)
	}
	return uint16(sum)
}

// BenchmarkChecksum32 runs checksum32 over the same inputs.
func BenchmarkChecksum32(b *testing.B) {
	for _, tc := range []struct {
		n, off int
	}{{20, 0}, {1500, 0}, {1500, 1}, {65536, 0}} {
		b.Run(fmt.Sprintf("%d+%d", tc.n, tc.off), func(b *testing.B) {
			buf := make([]byte, tc.n+tc.off)
			p := buf[tc.off:]
			b.SetBytes(int64(tc.n))
			var s uint16
			for b.Loop() {
				s += checksum32(p, 0)
			}
			sink16 = s
		})
	}
}
