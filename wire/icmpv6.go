package wire

import (
	"encoding/binary"
	"net/netip"
)

// ICMPv6 (RFC 4443 §2.1):
//
//	type(8) code(8) checksum(16) | body
//
// Every message this package knows has a second 32-bit word (echo
// identifier and sequence, MTU, pointer, flags or reserved), so its header
// is 8 bytes; the checksum covers an IPv6 pseudo-header (RFC 4443 §2.3,
// RFC 8200 §8.1).
const (
	ICMPv6HeaderLen    = 8
	icmpv6MinHeaderLen = 4
)

// ICMPv6Type is the type of an ICMPv6 message. Types below 128 are errors
// (RFC 4443 §2.1).
type ICMPv6Type uint8

const (
	ICMPv6DstUnreachable  ICMPv6Type = 1   // RFC 4443 §3.1
	ICMPv6PacketTooBig    ICMPv6Type = 2   // RFC 4443 §3.2
	ICMPv6TimeExceeded    ICMPv6Type = 3   // RFC 4443 §3.3
	ICMPv6ParamProblem    ICMPv6Type = 4   // RFC 4443 §3.4
	ICMPv6EchoRequest     ICMPv6Type = 128 // RFC 4443 §4.1
	ICMPv6EchoReply       ICMPv6Type = 129 // RFC 4443 §4.2
	ICMPv6MLDQuery        ICMPv6Type = 130 // RFC 2710 §3, RFC 3810 §5.1
	ICMPv6MLDReport       ICMPv6Type = 131 // MLDv1, RFC 2710 §3
	ICMPv6MLDDone         ICMPv6Type = 132 // RFC 2710 §3
	ICMPv6RouterSolicit   ICMPv6Type = 133 // RFC 4861 §4.1
	ICMPv6RouterAdvert    ICMPv6Type = 134 // RFC 4861 §4.2
	ICMPv6NeighborSolicit ICMPv6Type = 135 // RFC 4861 §4.3
	ICMPv6NeighborAdvert  ICMPv6Type = 136 // RFC 4861 §4.4
	ICMPv6Redirect        ICMPv6Type = 137 // RFC 4861 §4.5
	ICMPv6MLDv2Report     ICMPv6Type = 143 // RFC 3810 §5.2
)

// Codes of destination unreachable (RFC 4443 §3.1).
const (
	ICMPv6NoRoute          uint8 = 0
	ICMPv6AdminProhibited  uint8 = 1
	ICMPv6BeyondScope      uint8 = 2
	ICMPv6AddrUnreachable  uint8 = 3
	ICMPv6PortUnreachable  uint8 = 4
	ICMPv6SrcPolicyFailed  uint8 = 5
	ICMPv6RejectRoute      uint8 = 6
	ICMPv6SrcRoutingHdrErr uint8 = 7 // RFC 6550 §20.18
	ICMPv6HeadersTooLong   uint8 = 8 // RFC 8883 §4.1
)

// Codes of time exceeded (RFC 4443 §3.3).
const (
	ICMPv6HopLimitExceeded   uint8 = 0
	ICMPv6ReassemblyExceeded uint8 = 1
)

// Codes of parameter problem (RFC 4443 §3.4, RFC 7112 §6).
const (
	ICMPv6ErroneousHeader        uint8 = 0
	ICMPv6UnrecognizedNextHeader uint8 = 1
	ICMPv6UnrecognizedOption     uint8 = 2
	ICMPv6IncompleteChain        uint8 = 3 // first fragment without the whole header chain
)

func (t ICMPv6Type) String() string {
	switch t {
	case ICMPv6DstUnreachable:
		return "dst-unreachable"
	case ICMPv6PacketTooBig:
		return "packet-too-big"
	case ICMPv6TimeExceeded:
		return "time-exceeded"
	case ICMPv6ParamProblem:
		return "param-problem"
	case ICMPv6EchoRequest:
		return "echo-request"
	case ICMPv6EchoReply:
		return "echo-reply"
	case ICMPv6MLDQuery:
		return "mld-query"
	case ICMPv6MLDReport:
		return "mld-report"
	case ICMPv6MLDDone:
		return "mld-done"
	case ICMPv6RouterSolicit:
		return "router-solicitation"
	case ICMPv6RouterAdvert:
		return "router-advertisement"
	case ICMPv6NeighborSolicit:
		return "neighbor-solicitation"
	case ICMPv6NeighborAdvert:
		return "neighbor-advertisement"
	case ICMPv6Redirect:
		return "redirect"
	case ICMPv6MLDv2Report:
		return "mldv2-report"
	}
	return "icmp6-type(" + itoa(int(t)) + ")"
}

// IsError reports whether the type is an error message (RFC 4443 §2.1:
// the high bit of the type is clear).
func (t ICMPv6Type) IsError() bool { return t < 128 }

// known reports the types whose header ParseICMPv6 checks as 8 bytes.
func (t ICMPv6Type) known() bool {
	return t >= ICMPv6DstUnreachable && t <= ICMPv6ParamProblem ||
		t >= ICMPv6EchoRequest && t <= ICMPv6Redirect || t == ICMPv6MLDv2Report
}

// ICMPv6 is a view of an ICMPv6 message.
type ICMPv6 []byte

// ParseICMPv6 checks that b holds an ICMPv6 header: 8 bytes for the types
// listed above, 4 (type, code, checksum) for others. It does not check the
// checksum (it needs the addresses: see ChecksumValid) or the length of
// each message's body (the NDP and MLD parsers do).
func ParseICMPv6(b []byte) (ICMPv6, error) {
	if len(b) < icmpv6MinHeaderLen {
		return nil, ErrTruncated
	}
	if ICMPv6Type(b[0]).known() && len(b) < ICMPv6HeaderLen {
		return nil, ErrTruncated
	}
	return ICMPv6(b), nil
}

func (m ICMPv6) Type() ICMPv6Type { return ICMPv6Type(m[0]) }
func (m ICMPv6) Code() uint8      { return m[1] }
func (m ICMPv6) Checksum() uint16 { return binary.BigEndian.Uint16(m[2:]) }

// Rest is the second 32-bit word (see ICMPv6Fields.Rest); 0 on a message
// of an unknown type shorter than 8 bytes.
func (m ICMPv6) Rest() uint32 {
	if len(m) < ICMPv6HeaderLen {
		return 0
	}
	return binary.BigEndian.Uint32(m[4:])
}

// ID and Seq are the echo identifier and sequence number (RFC 4443 §4).
func (m ICMPv6) ID() uint16  { return uint16(m.Rest() >> 16) }
func (m ICMPv6) Seq() uint16 { return uint16(m.Rest()) }

// MTU is the MTU of a packet too big message (RFC 4443 §3.2).
func (m ICMPv6) MTU() uint32 { return m.Rest() }

// Pointer is the offset of the octet in error of a parameter problem
// within the invoking packet (RFC 4443 §3.4).
func (m ICMPv6) Pointer() uint32 { return m.Rest() }

// Body is everything after type, code and checksum: what the NDP and MLD
// parsers take.
func (m ICMPv6) Body() []byte { return m[icmpv6MinHeaderLen:] }

// Payload is everything after the 8-byte header: echo data, or the
// invoking packet quoted by an error. Empty on a shorter message.
func (m ICMPv6) Payload() []byte {
	if len(m) < ICMPv6HeaderLen {
		return m[len(m):]
	}
	return m[ICMPv6HeaderLen:]
}

// Quote returns the invoking packet quoted by an error message, checked
// by ParseIPv6Quote (RFC 4443 §2.4 (c)): its fixed header and whatever of
// the rest fitted. Informational types give ErrUnsupported.
func (m ICMPv6) Quote() (IPv6, error) {
	if !m.Type().IsError() {
		return nil, ErrUnsupported
	}
	return ParseIPv6Quote(m.Payload())
}

func (m ICMPv6) SetType(t ICMPv6Type) { m[0] = uint8(t) }
func (m ICMPv6) SetCode(c uint8)      { m[1] = c }
func (m ICMPv6) SetChecksum(c uint16) { binary.BigEndian.PutUint16(m[2:], c) }

// ChecksumValid reports whether the checksum over the pseudo-header (src,
// dst, the message length, next header 58) and the whole message holds
// (RFC 4443 §2.3). m must be the whole message, as the IPv6 payload
// length cuts it (IPv6.Payload, after any extension headers); src and
// dst are the packet's addresses (the final destination if there is a
// routing header, RFC 8200 §8.1).
func (m ICMPv6) ChecksumValid(src, dst netip.Addr) bool {
	return Checksum(m, PseudoHeaderChecksum(IPProtoICMPv6, src, dst, len(m))) == 0xffff
}

// UpdateChecksum recomputes the checksum over the pseudo-header and the
// whole message.
func (m ICMPv6) UpdateChecksum(src, dst netip.Addr) {
	m.SetChecksum(0)
	m.SetChecksum(^Checksum(m, PseudoHeaderChecksum(IPProtoICMPv6, src, dst, len(m))))
}

// ICMPv6Fields are the fields of an ICMPv6 header. Rest is the second
// word: identifier and sequence for echo (see EchoRest), MTU for packet
// too big, pointer for parameter problem, zero (unused) otherwise.
type ICMPv6Fields struct {
	Type ICMPv6Type
	Code uint8
	Rest uint32
}

// Len is ICMPv6HeaderLen.
func (f *ICMPv6Fields) Len() int { return ICMPv6HeaderLen }

// Encode writes the header with a zero checksum into b[:8]; the caller
// computes the checksum with ICMPv6.UpdateChecksum once the payload is in
// place.
func (f *ICMPv6Fields) Encode(b []byte) {
	_ = b[ICMPv6HeaderLen-1]
	b[0] = uint8(f.Type)
	b[1] = f.Code
	b[2], b[3] = 0, 0
	binary.BigEndian.PutUint32(b[4:], f.Rest)
}

// ICMPv6ErrorQuoteLen is how much of an invoking packet an error message
// may quote so that the error, in its IPv6 header, fits the minimum MTU
// (RFC 4443 §2.4 (c)): 1280 - 40 - 8.
const ICMPv6ErrorQuoteLen = IPv6MinMTU - IPv6HeaderLen - ICMPv6HeaderLen
