package wire

import (
	"encoding/binary"
	"net/netip"
)

// ICMPv4 (RFC 792).
const ICMPv4HeaderLen = 8

// ICMPv4Type is the type of an ICMPv4 message.
type ICMPv4Type uint8

const (
	ICMPv4EchoReply      ICMPv4Type = 0
	ICMPv4DstUnreachable ICMPv4Type = 3
	ICMPv4Redirect       ICMPv4Type = 5
	ICMPv4SourceQuench   ICMPv4Type = 4 // deprecated, RFC 6633
	ICMPv4Echo           ICMPv4Type = 8
	ICMPv4TimeExceeded   ICMPv4Type = 11
	ICMPv4ParamProblem   ICMPv4Type = 12
)

// Codes of ICMPv4 destination unreachable (RFC 792, RFC 1122 §3.2.2.1).
const (
	ICMPv4NetUnreachable   uint8 = 0
	ICMPv4HostUnreachable  uint8 = 1
	ICMPv4ProtoUnreachable uint8 = 2
	ICMPv4PortUnreachable  uint8 = 3
	ICMPv4FragNeeded       uint8 = 4
	ICMPv4AdminProhibited  uint8 = 13
)

// Codes of ICMPv4 time exceeded.
const (
	ICMPv4TTLExceeded        uint8 = 0
	ICMPv4ReassemblyExceeded uint8 = 1
)

func (t ICMPv4Type) String() string {
	switch t {
	case ICMPv4EchoReply:
		return "echo-reply"
	case ICMPv4DstUnreachable:
		return "dst-unreachable"
	case ICMPv4Redirect:
		return "redirect"
	case ICMPv4SourceQuench:
		return "source-quench"
	case ICMPv4Echo:
		return "echo"
	case ICMPv4TimeExceeded:
		return "time-exceeded"
	case ICMPv4ParamProblem:
		return "param-problem"
	}
	return "icmp-type(" + itoa(int(t)) + ")"
}

// IsError reports whether the type is an ICMP error message.
func (t ICMPv4Type) IsError() bool {
	switch t {
	case ICMPv4DstUnreachable, ICMPv4Redirect, ICMPv4TimeExceeded, ICMPv4ParamProblem, ICMPv4SourceQuench:
		return true
	}
	return false
}

// ICMPv4 is a view of an ICMPv4 message.
type ICMPv4 []byte

// ParseICMPv4 checks that b holds an ICMPv4 header.
func ParseICMPv4(b []byte) (ICMPv4, error) {
	if len(b) < ICMPv4HeaderLen {
		return nil, ErrTruncated
	}
	return ICMPv4(b), nil
}

func (m ICMPv4) Type() ICMPv4Type { return ICMPv4Type(m[0]) }
func (m ICMPv4) Code() uint8      { return m[1] }
func (m ICMPv4) Checksum() uint16 { return binary.BigEndian.Uint16(m[2:]) }

// ID and Seq are the echo identifier and sequence number.
func (m ICMPv4) ID() uint16  { return binary.BigEndian.Uint16(m[4:]) }
func (m ICMPv4) Seq() uint16 { return binary.BigEndian.Uint16(m[6:]) }

// MTU is the next-hop MTU of a fragmentation-needed message (RFC 1191 §4).
func (m ICMPv4) MTU() int { return int(binary.BigEndian.Uint16(m[6:])) }

// Rest is the second 32-bit word of the header (see ICMPv4Fields.Rest).
func (m ICMPv4) Rest() uint32 { return binary.BigEndian.Uint32(m[4:]) }

// Gateway is the gateway address of a redirect (RFC 792).
func (m ICMPv4) Gateway() netip.Addr { return netip.AddrFrom4([4]byte(m[4:8])) }

// Quote returns the datagram quoted by an error message (destination
// unreachable, source quench, redirect, time exceeded, parameter problem):
// its IP header and at least its first 8 data bytes (RFC 792; RFC 1122
// §3.2.2), checked by ParseIPv4Quote. The view's Payload is the quoted data
// (cut at the end of the message), enough for the ports of TCP or UDP.
// Other message types give ErrUnsupported.
func (m ICMPv4) Quote() (IPv4, error) {
	if !m.Type().IsError() {
		return nil, ErrUnsupported
	}
	return ParseIPv4Quote(m.Payload())
}

// Pointer is the octet pointer of a parameter problem.
func (m ICMPv4) Pointer() uint8       { return m[4] }
func (m ICMPv4) Payload() []byte      { return m[ICMPv4HeaderLen:] }
func (m ICMPv4) SetType(t ICMPv4Type) { m[0] = uint8(t) }
func (m ICMPv4) SetCode(c uint8)      { m[1] = c }
func (m ICMPv4) SetChecksum(c uint16) { binary.BigEndian.PutUint16(m[2:], c) }

// ChecksumValid reports whether the checksum over the whole message holds.
func (m ICMPv4) ChecksumValid() bool { return Checksum(m, 0) == 0xffff }

// UpdateChecksum recomputes the checksum over the whole message.
func (m ICMPv4) UpdateChecksum() {
	m.SetChecksum(0)
	m.SetChecksum(^Checksum(m, 0))
}

// ICMPv4Fields are the fields of an ICMPv4 header. Rest is the second word:
// identifier and sequence for echo, next-hop MTU for fragmentation needed,
// pointer for parameter problem, gateway for redirect, zero otherwise.
type ICMPv4Fields struct {
	Type ICMPv4Type
	Code uint8
	Rest uint32
}

// Len is the encoded header length.
func (f *ICMPv4Fields) Len() int { return ICMPv4HeaderLen }

// Encode writes the header with a zero checksum; the caller computes it with
// ICMPv4.UpdateChecksum once the payload is in place.
func (f *ICMPv4Fields) Encode(b []byte) {
	b[0] = uint8(f.Type)
	b[1] = f.Code
	b[2], b[3] = 0, 0
	binary.BigEndian.PutUint32(b[4:], f.Rest)
}

// EchoRest packs an echo identifier and sequence number for Rest.
func EchoRest(id, seq uint16) uint32 { return uint32(id)<<16 | uint32(seq) }

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	neg := n < 0
	if neg {
		n = -n
	}
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}
