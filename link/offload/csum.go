package offload

import (
	"encoding/binary"
	"math/bits"

	"ustack/buf"
	"ustack/wire"
)

// Complete finishes a partial checksum: when pkt.Offload.NeedsCsum is set,
// it sums the bytes from CsumStart to the end of the packet (the checksum
// field already holds the pseudo-header sum, virtio spec §5.1.6.2) and
// stores the complement at CsumStart+CsumOffset, then clears NeedsCsum and
// sets CsumValid. A result of zero is stored as 0xffff, which is the same
// value in ones' complement and the only one UDP allows (RFC 768). A packet
// without NeedsCsum is left alone. It does not take ownership of pkt.
func Complete(pkt *buf.Packet) error {
	o := &pkt.Offload
	if !o.NeedsCsum {
		return nil
	}
	start, field := int(o.CsumStart), int(o.CsumStart)+int(o.CsumOffset)
	if field+2 > pkt.Len() {
		return ErrCsumRange
	}
	hdr := pkt.Pullup(field + 2)
	sum := Sum(pkt, start, -1)
	c := ^sum
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(hdr[field:], c)
	o.NeedsCsum = false
	o.CsumValid = true
	return nil
}

// Sum returns the ones'-complement sum (RFC 1071) of the n bytes of pkt
// starting at off, across views (n < 0: to the end). A view that starts at
// an odd distance from off has its sum byte-swapped (RFC 1071 §2(B),
// byte-order independence). Transports verify checksums of multi-view
// packets with it.
func Sum(pkt *buf.Packet, off, n int) uint16 {
	if n < 0 {
		n = pkt.Len()
	}
	var sum uint16
	pos := 0 // bytes summed so far
	for i := 0; i < pkt.NumViews() && n > 0; i++ {
		v := pkt.View(i)
		if off >= len(v) {
			off -= len(v)
			continue
		}
		v = v[off:]
		off = 0
		if len(v) > n {
			v = v[:n]
		}
		n -= len(v)
		s := wire.Checksum(v, 0)
		if pos&1 == 1 {
			s = bits.ReverseBytes16(s)
		}
		sum = wire.ChecksumCombine(sum, s)
		pos += len(v)
	}
	return sum
}
