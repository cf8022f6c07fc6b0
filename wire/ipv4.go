package wire

import (
	"encoding/binary"
	"net/netip"
)

// IPv4 header (RFC 791 §3.1).
const (
	IPv4MinHeaderLen = 20
	IPv4MaxHeaderLen = 60
	IPv4MaxTotalLen  = 65535
	IPv4Version      = 4

	IPv4FlagDF  = 0x4000 // don't fragment
	IPv4FlagMF  = 0x2000 // more fragments
	ipv4OffMask = 0x1fff
)

// IPv4 is a view of an IPv4 header and what follows it.
type IPv4 []byte

// ParseIPv4 checks that b starts with a well-formed IPv4 header: version 4,
// IHL at least 5, the header within b, a total length covering the header
// and within b. It does not check the checksum (see IPv4.ChecksumValid) and
// does not truncate b to the total length (see IPv4.Packet).
func ParseIPv4(b []byte) (IPv4, error) {
	if len(b) < IPv4MinHeaderLen {
		return nil, ErrTruncated
	}
	if b[0]>>4 != IPv4Version {
		return nil, ErrBadVersion
	}
	hl := int(b[0]&0xf) * 4
	if hl < IPv4MinHeaderLen {
		return nil, ErrBadLength
	}
	if len(b) < hl {
		return nil, ErrTruncated
	}
	tl := int(binary.BigEndian.Uint16(b[2:]))
	if tl < hl {
		return nil, ErrBadLength
	}
	if tl > len(b) {
		return nil, ErrTruncated
	}
	return IPv4(b), nil
}

func (h IPv4) Version() uint8       { return h[0] >> 4 }
func (h IPv4) HeaderLen() int       { return int(h[0]&0xf) * 4 }
func (h IPv4) TOS() uint8           { return h[1] }
func (h IPv4) TotalLen() int        { return int(binary.BigEndian.Uint16(h[2:])) }
func (h IPv4) ID() uint16           { return binary.BigEndian.Uint16(h[4:]) }
func (h IPv4) Flags() uint16        { return binary.BigEndian.Uint16(h[6:]) &^ ipv4OffMask }
func (h IPv4) DontFragment() bool   { return binary.BigEndian.Uint16(h[6:])&IPv4FlagDF != 0 }
func (h IPv4) MoreFragments() bool  { return binary.BigEndian.Uint16(h[6:])&IPv4FlagMF != 0 }
func (h IPv4) FragmentOffset() int  { return int(binary.BigEndian.Uint16(h[6:])&ipv4OffMask) * 8 }
func (h IPv4) IsFragment() bool     { return binary.BigEndian.Uint16(h[6:])&(IPv4FlagMF|ipv4OffMask) != 0 }
func (h IPv4) TTL() uint8           { return h[8] }
func (h IPv4) Protocol() IPProtocol { return IPProtocol(h[9]) }
func (h IPv4) Checksum() uint16     { return binary.BigEndian.Uint16(h[10:]) }
func (h IPv4) Src() netip.Addr      { return netip.AddrFrom4([4]byte(h[12:16])) }
func (h IPv4) Dst() netip.Addr      { return netip.AddrFrom4([4]byte(h[16:20])) }
func (h IPv4) Options() []byte      { return h[IPv4MinHeaderLen:h.HeaderLen()] }
func (h IPv4) Header() []byte       { return h[:h.HeaderLen()] }

// Payload is the data after the header up to the total length. On a view
// shorter than its total length (the quote in an ICMP error, see
// ParseIPv4Quote) it is cut at the end of the view.
func (h IPv4) Payload() []byte { return h[h.HeaderLen():h.end()] }

// Packet is the header and payload, without link-layer padding (cut at the
// end of the view like Payload).
func (h IPv4) Packet() []byte { return h[:h.end()] }

// end is the total length, kept within [header length, len(h)] so that
// Payload and Packet never panic on a view from ParseIPv4 or ParseIPv4Quote.
func (h IPv4) end() int {
	return max(h.HeaderLen(), min(h.TotalLen(), len(h)))
}

func (h IPv4) SetTotalLen(n int) { binary.BigEndian.PutUint16(h[2:], uint16(n)) }
func (h IPv4) SetID(id uint16)   { binary.BigEndian.PutUint16(h[4:], id) }
func (h IPv4) SetFlagsOffset(flags uint16, off int) {
	binary.BigEndian.PutUint16(h[6:], flags&^ipv4OffMask|uint16(off/8)&ipv4OffMask)
}
func (h IPv4) SetTTL(ttl uint8)     { h[8] = ttl }
func (h IPv4) SetChecksum(c uint16) { binary.BigEndian.PutUint16(h[10:], c) }
func (h IPv4) SetSrc(a netip.Addr)  { put4(h[12:16], a) }
func (h IPv4) SetDst(a netip.Addr)  { put4(h[16:20], a) }

// put4 writes an IPv4 address; the zero netip.Addr is written as 0.0.0.0
// (as in an ARP probe, RFC 5227 §2.1.1, or a DHCP client's source). An IPv6
// address panics: it is a caller bug.
func put4(b []byte, a netip.Addr) {
	if !a.IsValid() {
		clear(b[:4])
		return
	}
	v := a.As4()
	copy(b[:4], v[:])
}

// ChecksumValid reports whether the header checksum is correct.
func (h IPv4) ChecksumValid() bool { return Checksum(h.Header(), 0) == 0xffff }

// UpdateChecksum recomputes the header checksum.
func (h IPv4) UpdateChecksum() {
	h.SetChecksum(0)
	h.SetChecksum(^Checksum(h.Header(), 0))
}

// DecrementTTL lowers the TTL by one and patches the checksum
// incrementally (RFC 1624; RFC 1812 §5.3.1).
func (h IPv4) DecrementTTL() {
	old := binary.BigEndian.Uint16(h[8:])
	h[8]--
	h.SetChecksum(ChecksumUpdate16(h.Checksum(), old, binary.BigEndian.Uint16(h[8:])))
}

// PseudoHeaderChecksum is the pseudo-header sum for the transport payload.
func (h IPv4) PseudoHeaderChecksum() uint16 {
	return PseudoHeaderChecksum(h.Protocol(), h.Src(), h.Dst(), h.TotalLen()-h.HeaderLen())
}

// IPv4Fields are the fields of an IPv4 header.
type IPv4Fields struct {
	TOS      uint8
	TotalLen int // header and payload
	ID       uint16
	Flags    uint16 // IPv4FlagDF, IPv4FlagMF
	FragOff  int    // in bytes, a multiple of 8
	TTL      uint8
	Protocol IPProtocol
	Src, Dst netip.Addr
	Options  []byte // encoded options (see ipv4opt.go), at most 40 bytes
}

// Len is the encoded header length: the options are padded with zeros
// (end of option list) to a multiple of 4 bytes (RFC 791 §3.1, padding).
func (f *IPv4Fields) Len() int { return IPv4MinHeaderLen + (len(f.Options)+3)&^3 }

// Encode writes the header, checksum included, into b[:f.Len()]. Options
// longer than 40 bytes cannot be expressed in the IHL field: Encode panics.
func (f *IPv4Fields) Encode(b []byte) {
	hl := f.Len()
	if hl > IPv4MaxHeaderLen {
		panic("wire: IPv4 options longer than 40 bytes")
	}
	h := IPv4(b[:hl])
	h[0] = IPv4Version<<4 | uint8(hl/4)
	h[1] = f.TOS
	h.SetTotalLen(f.TotalLen)
	h.SetID(f.ID)
	h.SetFlagsOffset(f.Flags, f.FragOff)
	h[8] = f.TTL
	h[9] = uint8(f.Protocol)
	h.SetSrc(f.Src)
	h.SetDst(f.Dst)
	n := copy(h[IPv4MinHeaderLen:], f.Options)
	clear(h[IPv4MinHeaderLen+n:])
	h.UpdateChecksum()
}

// ParseIPv4Quote checks the start of a datagram quoted in an ICMP error
// (RFC 792; RFC 1122 §3.2.2: the IP header and at least the first 8 bytes
// of its data; RFC 1812 §4.3.2.3 allows more). It is ParseIPv4 except that
// the quote may end before the total length; what it must hold is the
// header and min(8, total length - header length) bytes of data. Payload
// on the result is the quoted data, cut at the end of b.
func ParseIPv4Quote(b []byte) (IPv4, error) {
	if len(b) < IPv4MinHeaderLen {
		return nil, ErrTruncated
	}
	if b[0]>>4 != IPv4Version {
		return nil, ErrBadVersion
	}
	hl := int(b[0]&0xf) * 4
	if hl < IPv4MinHeaderLen {
		return nil, ErrBadLength
	}
	tl := int(binary.BigEndian.Uint16(b[2:]))
	if tl < hl {
		return nil, ErrBadLength
	}
	if len(b) < hl+min(8, tl-hl) {
		return nil, ErrTruncated
	}
	return IPv4(b), nil
}
