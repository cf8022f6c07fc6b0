package wire

import "encoding/binary"

// UDP header (RFC 768).
const UDPHeaderLen = 8

// UDP is a view of a UDP header and payload.
type UDP []byte

// ParseUDP checks that b holds a UDP header whose length field covers the
// header and fits in b. The view is cut to the length field.
func ParseUDP(b []byte) (UDP, error) {
	if len(b) < UDPHeaderLen {
		return nil, ErrTruncated
	}
	n := int(binary.BigEndian.Uint16(b[4:]))
	if n < UDPHeaderLen {
		return nil, ErrBadLength
	}
	if n > len(b) {
		return nil, ErrTruncated
	}
	return UDP(b[:n]), nil
}

func (u UDP) SrcPort() uint16      { return binary.BigEndian.Uint16(u[0:]) }
func (u UDP) DstPort() uint16      { return binary.BigEndian.Uint16(u[2:]) }
func (u UDP) Length() int          { return int(binary.BigEndian.Uint16(u[4:])) }
func (u UDP) Checksum() uint16     { return binary.BigEndian.Uint16(u[6:]) }
func (u UDP) Payload() []byte      { return u[UDPHeaderLen:] }
func (u UDP) SetSrcPort(p uint16)  { binary.BigEndian.PutUint16(u[0:], p) }
func (u UDP) SetDstPort(p uint16)  { binary.BigEndian.PutUint16(u[2:], p) }
func (u UDP) SetLength(n int)      { binary.BigEndian.PutUint16(u[4:], uint16(n)) }
func (u UDP) SetChecksum(c uint16) { binary.BigEndian.PutUint16(u[6:], c) }

// UDPFields are the fields of a UDP header.
type UDPFields struct {
	SrcPort, DstPort uint16
	Length           int // header and payload
	Checksum         uint16
}

// Len is the encoded header length.
func (f *UDPFields) Len() int { return UDPHeaderLen }

// Encode writes the header into b[:UDPHeaderLen].
func (f *UDPFields) Encode(b []byte) {
	u := UDP(b[:UDPHeaderLen])
	u.SetSrcPort(f.SrcPort)
	u.SetDstPort(f.DstPort)
	u.SetLength(f.Length)
	u.SetChecksum(f.Checksum)
}

// UDPChecksum computes the checksum field value for a UDP datagram given
// its pseudo-header sum and the sum of the datagram with a zero checksum
// field. A computed zero is sent as 0xffff (RFC 768).
func UDPChecksum(pseudo, datagram uint16) uint16 {
	c := ^ChecksumCombine(pseudo, datagram)
	if c == 0 {
		return 0xffff
	}
	return c
}
