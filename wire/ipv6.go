package wire

import (
	"encoding/binary"
	"net/netip"
)

// IPv6 header (RFC 8200 §3):
//
//	version(4) traffic class(8) flow label(20)
//	payload length(16) next header(8) hop limit(8)
//	source address(128)
//	destination address(128)
//
// The payload length counts everything after the fixed header, extension
// headers included (RFC 8200 §3). Extension headers are in ipv6ext.go.
const (
	IPv6HeaderLen     = 40
	IPv6Version       = 6
	IPv6MinMTU        = 1280  // RFC 8200 §5
	IPv6MaxPayloadLen = 65535 // without a jumbo payload option (RFC 2675)

	ipv6FlowMask = 0xfffff
)

// IPv6 is a view of an IPv6 header and what follows it.
type IPv6 []byte

// ParseIPv6 checks that b starts with an IPv6 header: version 6, the 40
// bytes of the fixed header, and a payload length within b. Bytes past the
// payload (link-layer padding) are allowed; Payload and Packet leave them
// out. A payload length of 0 followed by a hop-by-hop header holding a
// jumbo payload option (RFC 2675) is ErrUnsupported: ustack has no links
// with an MTU over 65575.
func ParseIPv6(b []byte) (IPv6, error) {
	if len(b) < IPv6HeaderLen {
		return nil, ErrTruncated
	}
	if b[0]>>4 != IPv6Version {
		return nil, ErrBadVersion
	}
	pl := int(binary.BigEndian.Uint16(b[4:]))
	if pl == 0 && IPProtocol(b[6]) == IPProtoHopByHop && hasJumbo(b[IPv6HeaderLen:]) {
		return nil, ErrUnsupported
	}
	if IPv6HeaderLen+pl > len(b) {
		return nil, ErrTruncated
	}
	return IPv6(b), nil
}

// hasJumbo reports whether b starts with a hop-by-hop header (as far as b
// holds it) carrying a jumbo payload option (RFC 2675 §2).
func hasJumbo(b []byte) bool {
	if len(b) < 2 {
		return false
	}
	n := min(len(b), (int(b[1])+1)*8)
	it := NewIPv6OptIter(b[2:n])
	for o, ok := it.Next(); ok; o, ok = it.Next() {
		if o.Type == IPv6OptJumbo {
			return true
		}
	}
	return false
}

func (h IPv6) Version() uint8         { return h[0] >> 4 }
func (h IPv6) TrafficClass() uint8    { return uint8(binary.BigEndian.Uint16(h[0:]) >> 4) }
func (h IPv6) FlowLabel() uint32      { return binary.BigEndian.Uint32(h[0:]) & ipv6FlowMask }
func (h IPv6) PayloadLen() int        { return int(binary.BigEndian.Uint16(h[4:])) }
func (h IPv6) NextHeader() IPProtocol { return IPProtocol(h[6]) }
func (h IPv6) HopLimit() uint8        { return h[7] }
func (h IPv6) Src() netip.Addr        { return netip.AddrFrom16([16]byte(h[8:24])) }
func (h IPv6) Dst() netip.Addr        { return netip.AddrFrom16([16]byte(h[24:40])) }
func (h IPv6) Header() []byte         { return h[:IPv6HeaderLen] }

// Payload is what follows the fixed header up to the payload length:
// extension headers and the upper-layer data. On a view shorter than its
// payload length (a quote, see ParseIPv6Quote) it is cut at the end of the
// view.
func (h IPv6) Payload() []byte { return h[IPv6HeaderLen:h.end()] }

// Packet is the header and payload, without link-layer padding (cut at the
// end of the view like Payload).
func (h IPv6) Packet() []byte { return h[:h.end()] }

func (h IPv6) end() int { return min(IPv6HeaderLen+h.PayloadLen(), len(h)) }

// SetTrafficClass keeps the version and flow label.
func (h IPv6) SetTrafficClass(tc uint8) {
	w := binary.BigEndian.Uint32(h[0:])
	binary.BigEndian.PutUint32(h[0:], w&^(0xff<<20)|uint32(tc)<<20)
}

// SetFlowLabel keeps the version and traffic class; fl is masked to 20
// bits.
func (h IPv6) SetFlowLabel(fl uint32) {
	w := binary.BigEndian.Uint32(h[0:])
	binary.BigEndian.PutUint32(h[0:], w&^ipv6FlowMask|fl&ipv6FlowMask)
}

func (h IPv6) SetPayloadLen(n int)        { binary.BigEndian.PutUint16(h[4:], uint16(n)) }
func (h IPv6) SetNextHeader(p IPProtocol) { h[6] = uint8(p) }
func (h IPv6) SetHopLimit(hl uint8)       { h[7] = hl }
func (h IPv6) SetSrc(a netip.Addr)        { put16(h[8:24], a) }
func (h IPv6) SetDst(a netip.Addr)        { put16(h[24:40], a) }
func (h IPv6) PseudoHeaderChecksum(p IPProtocol, n int) uint16 {
	return PseudoHeaderChecksum(p, h.Src(), h.Dst(), n)
}

// put16 writes an IPv6 address; the zero netip.Addr is written as ::
// (the source of a duplicate address detection probe, RFC 4862 §5.4.2).
// An IPv4 address is written IPv4-mapped.
func put16(b []byte, a netip.Addr) {
	if !a.IsValid() {
		clear(b[:16])
		return
	}
	v := a.As16()
	copy(b[:16], v[:])
}

// IPv6Fields are the fields of an IPv6 fixed header.
type IPv6Fields struct {
	TrafficClass uint8
	FlowLabel    uint32 // 20 bits; higher bits are dropped
	PayloadLen   int    // extension headers and upper-layer data
	NextHeader   IPProtocol
	HopLimit     uint8
	Src, Dst     netip.Addr
}

// Len is the encoded header length, IPv6HeaderLen.
func (f *IPv6Fields) Len() int { return IPv6HeaderLen }

// Encode writes the header into b[:IPv6HeaderLen]. There is no header
// checksum in IPv6.
func (f *IPv6Fields) Encode(b []byte) {
	h := IPv6(b[:IPv6HeaderLen])
	binary.BigEndian.PutUint32(h[0:], IPv6Version<<28|uint32(f.TrafficClass)<<20|f.FlowLabel&ipv6FlowMask)
	h.SetPayloadLen(f.PayloadLen)
	h[6] = uint8(f.NextHeader)
	h[7] = f.HopLimit
	h.SetSrc(f.Src)
	h.SetDst(f.Dst)
}

// ParseIPv6Quote checks the start of a packet quoted in an ICMPv6 error,
// which holds as much of the invoking packet as fits in the minimum MTU
// (RFC 4443 §2.4 (c), §3.1): version 6 and the 40-byte fixed header. The
// payload may end before the payload length; Payload on the result is cut
// at the end of b.
func ParseIPv6Quote(b []byte) (IPv6, error) {
	if len(b) < IPv6HeaderLen {
		return nil, ErrTruncated
	}
	if b[0]>>4 != IPv6Version {
		return nil, ErrBadVersion
	}
	return IPv6(b), nil
}

// Well-known IPv6 multicast groups (RFC 4291 §2.7.1, RFC 3810 §5.2.14),
// as functions in the manner of netip.IPv6LinkLocalAllNodes.
func IPv6AllNodes() netip.Addr        { return netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 15: 0x01}) }
func IPv6AllRouters() netip.Addr      { return netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 15: 0x02}) }
func IPv6AllMLDv2Routers() netip.Addr { return netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 15: 0x16}) }

// SolicitedNodeMulticast is the solicited-node multicast address of a
// unicast or anycast address: ff02::1:ff00:0/104 followed by the low 24
// bits of a (RFC 4291 §2.7.1).
func SolicitedNodeMulticast(a netip.Addr) netip.Addr {
	v := a.As16()
	return netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 11: 0x01, 12: 0xff, 13: v[13], 14: v[14], 15: v[15]})
}

// EUI64 is the modified EUI-64 interface identifier of an IEEE 802 MAC
// address: ff:fe inserted in the middle and the universal/local bit
// inverted (RFC 4291 §2.5.1 and Appendix A; RFC 2464 §4).
func EUI64(m MAC) [8]byte {
	return [8]byte{m[0] ^ 0x02, m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]}
}

// AddrWithInterfaceID puts the interface identifier iid in the low 64
// bits of the prefix's address (RFC 4862 §5.5.3 (d): SLAAC needs a /64).
// ok is false unless p is a valid IPv6 prefix of 64 bits.
func AddrWithInterfaceID(p netip.Prefix, iid [8]byte) (a netip.Addr, ok bool) {
	if !p.IsValid() || !p.Addr().Is6() || p.Addr().Is4In6() || p.Bits() != 64 {
		return netip.Addr{}, false
	}
	v := p.Addr().As16()
	copy(v[8:], iid[:])
	return netip.AddrFrom16(v), true
}

// LinkLocalFromMAC is the link-local address fe80::/64 with the modified
// EUI-64 of m (RFC 4862 §5.3, RFC 2464 §5).
func LinkLocalFromMAC(m MAC) netip.Addr {
	v := [16]byte{0: 0xfe, 1: 0x80}
	iid := EUI64(m)
	copy(v[8:], iid[:])
	return netip.AddrFrom16(v)
}
