package wire

import (
	"encoding/binary"
	"net/netip"
	"time"
)

// Neighbor Discovery messages (RFC 4861 §4) are ICMPv6 messages. The
// parsers here take the body, the bytes after type, code and checksum
// (ICMPv6.Body()); the encoders write whole messages, type to options,
// with a zero checksum for ICMPv6.UpdateChecksum. Bodies:
//
//	router solicitation    reserved(32)                         options
//	router advertisement   hop limit(8) M O flags(8) lifetime(16)
//	                       reachable time(32) retrans timer(32)  options
//	neighbor solicitation  reserved(32) target(128)              options
//	neighbor advertisement R S O flags(8) reserved(24) target(128) options
//	redirect               reserved(32) target(128) dst(128)     options
//
// Each parser also walks the options and returns ErrBadOption if one has
// length zero or runs past the end: the whole message must then be
// dropped (RFC 4861 §4.6). What needs the IPv6 header (hop limit 255,
// addresses) or the ICMPv6 code (0) is the caller's check (RFC 4861 §6.1,
// §7.1, §8.1).

// Body lengths before the options.
const (
	ndpRSLen       = 4
	ndpRALen       = 12
	ndpNSLen       = 20
	ndpNALen       = 20
	ndpRedirectLen = 36
)

// NDPInfiniteLifetime is the all-ones lifetime of a prefix (RFC 4861
// §4.6.2): the prefix never expires. Encoders write any lifetime at or
// above it as all ones.
const NDPInfiniteLifetime = time.Duration(0xffffffff) * time.Second

func parseNDP(body []byte, fixed int) error {
	if len(body) < fixed {
		return ErrTruncated
	}
	return ValidateNDPOptions(body[fixed:])
}

// NDPRouterSolicit is the body of a router solicitation (RFC 4861 §4.1).
type NDPRouterSolicit []byte

// ParseNDPRouterSolicit checks a router solicitation body and its options.
func ParseNDPRouterSolicit(body []byte) (NDPRouterSolicit, error) {
	if err := parseNDP(body, ndpRSLen); err != nil {
		return nil, err
	}
	return NDPRouterSolicit(body), nil
}

func (m NDPRouterSolicit) Options() []byte { return m[ndpRSLen:] }

// NDPRouterAdvert is the body of a router advertisement (RFC 4861 §4.2).
type NDPRouterAdvert []byte

// Flags of a router advertisement.
const (
	NDPRAManaged = 0x80 // addresses from DHCPv6
	NDPRAOther   = 0x40 // other configuration from DHCPv6
)

// ParseNDPRouterAdvert checks a router advertisement body and its options.
func ParseNDPRouterAdvert(body []byte) (NDPRouterAdvert, error) {
	if err := parseNDP(body, ndpRALen); err != nil {
		return nil, err
	}
	return NDPRouterAdvert(body), nil
}

// CurHopLimit is the hop limit to use, 0 if unspecified.
func (m NDPRouterAdvert) CurHopLimit() uint8 { return m[0] }
func (m NDPRouterAdvert) Flags() uint8       { return m[1] }
func (m NDPRouterAdvert) Managed() bool      { return m[1]&NDPRAManaged != 0 }
func (m NDPRouterAdvert) Other() bool        { return m[1]&NDPRAOther != 0 }

// RouterLifetime is how long the sender is a default router; 0: not one.
func (m NDPRouterAdvert) RouterLifetime() time.Duration {
	return time.Duration(binary.BigEndian.Uint16(m[2:])) * time.Second
}

// ReachableTime and RetransTimer are 0 if unspecified.
func (m NDPRouterAdvert) ReachableTime() time.Duration {
	return time.Duration(binary.BigEndian.Uint32(m[4:])) * time.Millisecond
}
func (m NDPRouterAdvert) RetransTimer() time.Duration {
	return time.Duration(binary.BigEndian.Uint32(m[8:])) * time.Millisecond
}
func (m NDPRouterAdvert) Options() []byte { return m[ndpRALen:] }

// NDPNeighborSolicit is the body of a neighbor solicitation (RFC 4861
// §4.3).
type NDPNeighborSolicit []byte

// ParseNDPNeighborSolicit checks a neighbor solicitation body and its
// options. It does not reject a multicast target (RFC 4861 §7.1.1): that
// is the caller's check.
func ParseNDPNeighborSolicit(body []byte) (NDPNeighborSolicit, error) {
	if err := parseNDP(body, ndpNSLen); err != nil {
		return nil, err
	}
	return NDPNeighborSolicit(body), nil
}

func (m NDPNeighborSolicit) Target() netip.Addr { return netip.AddrFrom16([16]byte(m[4:20])) }
func (m NDPNeighborSolicit) Options() []byte    { return m[ndpNSLen:] }

// NDPNeighborAdvert is the body of a neighbor advertisement (RFC 4861
// §4.4).
type NDPNeighborAdvert []byte

// Flags of a neighbor advertisement.
const (
	NDPNARouter    = 0x80
	NDPNASolicited = 0x40
	NDPNAOverride  = 0x20
)

// ParseNDPNeighborAdvert checks a neighbor advertisement body and its
// options.
func ParseNDPNeighborAdvert(body []byte) (NDPNeighborAdvert, error) {
	if err := parseNDP(body, ndpNALen); err != nil {
		return nil, err
	}
	return NDPNeighborAdvert(body), nil
}

func (m NDPNeighborAdvert) Router() bool       { return m[0]&NDPNARouter != 0 }
func (m NDPNeighborAdvert) Solicited() bool    { return m[0]&NDPNASolicited != 0 }
func (m NDPNeighborAdvert) Override() bool     { return m[0]&NDPNAOverride != 0 }
func (m NDPNeighborAdvert) Target() netip.Addr { return netip.AddrFrom16([16]byte(m[4:20])) }
func (m NDPNeighborAdvert) Options() []byte    { return m[ndpNALen:] }

// NDPRedirect is the body of a redirect (RFC 4861 §4.5).
type NDPRedirect []byte

// ParseNDPRedirect checks a redirect body and its options.
func ParseNDPRedirect(body []byte) (NDPRedirect, error) {
	if err := parseNDP(body, ndpRedirectLen); err != nil {
		return nil, err
	}
	return NDPRedirect(body), nil
}

// Target is the better first hop (a router's link-local address, or Dst
// itself when the destination is on-link).
func (m NDPRedirect) Target() netip.Addr { return netip.AddrFrom16([16]byte(m[4:20])) }
func (m NDPRedirect) Dst() netip.Addr    { return netip.AddrFrom16([16]byte(m[20:36])) }
func (m NDPRedirect) Options() []byte    { return m[ndpRedirectLen:] }

// ND option types (RFC 4861 §4.6 and IANA "IPv6 Neighbor Discovery Option
// Formats").
const (
	NDPOptSourceLLA        uint8 = 1  // RFC 4861 §4.6.1
	NDPOptTargetLLA        uint8 = 2  // RFC 4861 §4.6.1
	NDPOptPrefixInfo       uint8 = 3  // RFC 4861 §4.6.2
	NDPOptRedirectedHeader uint8 = 4  // RFC 4861 §4.6.3
	NDPOptMTU              uint8 = 5  // RFC 4861 §4.6.4
	NDPOptNonce            uint8 = 14 // RFC 3971 §5.3.2, RFC 7527
	NDPOptRouteInfo        uint8 = 24 // RFC 4191 §2.3
	NDPOptRDNSS            uint8 = 25 // RFC 8106 §5.1
)

// NDPOption is one option found by NDPOptIter. Data is what follows the
// type and length octets: the option's length times 8, less 2.
type NDPOption struct {
	Type uint8
	Data []byte
}

// LinkAddr is the address of a source or target link-layer address option
// for Ethernet (length 1, RFC 2464 §6).
func (o NDPOption) LinkAddr() (MAC, bool) {
	if o.Type != NDPOptSourceLLA && o.Type != NDPOptTargetLLA || len(o.Data) != 6 {
		return MAC{}, false
	}
	return MAC(o.Data), true
}

// NDPPrefixInfo is a prefix information option (RFC 4861 §4.6.2). Parsed,
// Prefix is masked (RFC 4861 §4.6.2: bits past the prefix length are
// ignored); the lifetimes are NDPInfiniteLifetime for all ones.
type NDPPrefixInfo struct {
	Prefix            netip.Prefix
	OnLink            bool // L: the prefix is on-link
	Autonomous        bool // A: use it for SLAAC (RFC 4862 §5.5.3)
	ValidLifetime     time.Duration
	PreferredLifetime time.Duration
}

// Flags of a prefix information option.
const (
	ndpPrefixOnLink     = 0x80
	ndpPrefixAutonomous = 0x40
	ndpPrefixInfoLen    = 32
)

// PrefixInfo decodes a prefix information option. ok is false for another
// type, a length other than 4 (32 bytes), or a prefix length over 128.
func (o NDPOption) PrefixInfo() (NDPPrefixInfo, bool) {
	if o.Type != NDPOptPrefixInfo || len(o.Data) != ndpPrefixInfoLen-2 || o.Data[0] > 128 {
		return NDPPrefixInfo{}, false
	}
	d := o.Data
	return NDPPrefixInfo{
		Prefix:            netip.PrefixFrom(netip.AddrFrom16([16]byte(d[14:30])), int(d[0])).Masked(),
		OnLink:            d[1]&ndpPrefixOnLink != 0,
		Autonomous:        d[1]&ndpPrefixAutonomous != 0,
		ValidLifetime:     time.Duration(binary.BigEndian.Uint32(d[2:])) * time.Second,
		PreferredLifetime: time.Duration(binary.BigEndian.Uint32(d[6:])) * time.Second,
	}, true
}

// MTU decodes an MTU option (length 1).
func (o NDPOption) MTU() (uint32, bool) {
	if o.Type != NDPOptMTU || len(o.Data) != 6 {
		return 0, false
	}
	return binary.BigEndian.Uint32(o.Data[2:]), true
}

// RedirectedHeader is the quoted packet of a redirected header option
// (RFC 4861 §4.6.3), after its 6 reserved bytes, for ParseIPv6Quote.
func (o NDPOption) RedirectedHeader() ([]byte, bool) {
	if o.Type != NDPOptRedirectedHeader || len(o.Data) < 6 {
		return nil, false
	}
	return o.Data[6:], true
}

// NDPOptIter walks ND options without allocating.
type NDPOptIter struct {
	b   []byte
	off int
	err error
}

// NewNDPOptIter returns an iterator over b, a message's options
// (Options() of a parsed message).
func NewNDPOptIter(b []byte) NDPOptIter { return NDPOptIter{b: b} }

// Next returns the next option. It returns ok == false at the end, or on
// an option with length zero or running past the end, after which Err is
// ErrBadOption.
func (it *NDPOptIter) Next() (opt NDPOption, ok bool) {
	if it.err != nil || it.off >= len(it.b) {
		return NDPOption{}, false
	}
	rest := it.b[it.off:]
	if len(rest) < 2 || rest[1] == 0 || int(rest[1])*8 > len(rest) {
		it.err = ErrBadOption
		return NDPOption{}, false
	}
	n := int(rest[1]) * 8
	it.off += n
	return NDPOption{Type: rest[0], Data: rest[2:n:n]}, true
}

// Err is nil or ErrBadOption once Next has returned false.
func (it *NDPOptIter) Err() error { return it.err }

// Offset is the offset within b of the next option to be returned.
func (it *NDPOptIter) Offset() int { return it.off }

// ValidateNDPOptions returns ErrBadOption if an option has length zero or
// runs past the end of b.
func ValidateNDPOptions(b []byte) error {
	it := NewNDPOptIter(b)
	for _, ok := it.Next(); ok; _, ok = it.Next() {
	}
	return it.Err()
}

// FindNDPOption returns the first option of type t in b, a validated
// options area.
func FindNDPOption(b []byte, t uint8) (NDPOption, bool) {
	it := NewNDPOptIter(b)
	for o, ok := it.Next(); ok; o, ok = it.Next() {
		if o.Type == t {
			return o, true
		}
	}
	return NDPOption{}, false
}

// NDPOptionFields is an option to encode: the data is padded with zeros
// to a multiple of 8 bytes with the type and length.
type NDPOptionFields struct {
	Type uint8
	Data []byte // after type and length, at most 2038 bytes
}

// Len is 2+len(Data) rounded up to 8.
func (f *NDPOptionFields) Len() int { return (2 + len(f.Data) + 7) &^ 7 }

// Encode writes the option into b[:f.Len()]. Data too long for the length
// octet panics.
func (f *NDPOptionFields) Encode(b []byte) {
	n := f.Len()
	if n > 255*8 {
		panic("wire: ND option longer than 2040 bytes")
	}
	b = b[:n]
	b[0], b[1] = f.Type, uint8(n/8)
	clear(b[2+copy(b[2:], f.Data):])
}

const ndpLLALen = 8

// encodeLLA writes a link-layer address option if m is not nil and
// returns its length.
func encodeLLA(b []byte, t uint8, m *MAC) int {
	if m == nil {
		return 0
	}
	b[0], b[1] = t, 1
	copy(b[2:8], m[:])
	return ndpLLALen
}

func llaLen(m *MAC) int {
	if m == nil {
		return 0
	}
	return ndpLLALen
}

// ndpHeader writes type, code 0, checksum 0 and clears the 4 bytes after.
func ndpHeader(b []byte, t ICMPv6Type) {
	b[0], b[1], b[2], b[3] = uint8(t), 0, 0, 0
	clear(b[4:8])
}

// NDPRouterSolicitFields is a router solicitation to encode.
type NDPRouterSolicitFields struct {
	SourceLLA *MAC // nil: no option (required when the source is ::, RFC 4861 §4.1)
}

func (f *NDPRouterSolicitFields) Len() int {
	return icmpv6MinHeaderLen + ndpRSLen + llaLen(f.SourceLLA)
}

// Encode writes the message into b[:f.Len()].
func (f *NDPRouterSolicitFields) Encode(b []byte) {
	ndpHeader(b, ICMPv6RouterSolicit)
	encodeLLA(b[8:], NDPOptSourceLLA, f.SourceLLA)
}

// NDPRouterAdvertFields is a router advertisement to encode. Options come
// in the order radvd sends them: prefixes, MTU (if not 0), source
// link-layer address.
type NDPRouterAdvertFields struct {
	CurHopLimit    uint8
	Managed, Other bool
	RouterLifetime time.Duration // whole seconds, at most 65535 s
	ReachableTime  time.Duration // whole milliseconds
	RetransTimer   time.Duration // whole milliseconds
	SourceLLA      *MAC
	MTU            uint32
	Prefixes       []NDPPrefixInfo
}

func (f *NDPRouterAdvertFields) Len() int {
	n := icmpv6MinHeaderLen + ndpRALen + llaLen(f.SourceLLA) + ndpPrefixInfoLen*len(f.Prefixes)
	if f.MTU != 0 {
		n += 8
	}
	return n
}

// Encode writes the message into b[:f.Len()]. Durations are truncated to
// the unit of their field and clamped to its range.
func (f *NDPRouterAdvertFields) Encode(b []byte) {
	ndpHeader(b, ICMPv6RouterAdvert)
	b[4] = f.CurHopLimit
	if f.Managed {
		b[5] |= NDPRAManaged
	}
	if f.Other {
		b[5] |= NDPRAOther
	}
	binary.BigEndian.PutUint16(b[6:], uint16(clampUnits(f.RouterLifetime, time.Second, 0xffff)))
	binary.BigEndian.PutUint32(b[8:], clampUnits(f.ReachableTime, time.Millisecond, 0xffffffff))
	binary.BigEndian.PutUint32(b[12:], clampUnits(f.RetransTimer, time.Millisecond, 0xffffffff))
	off := 16
	for i := range f.Prefixes {
		f.Prefixes[i].encode(b[off : off+ndpPrefixInfoLen])
		off += ndpPrefixInfoLen
	}
	if f.MTU != 0 {
		b[off], b[off+1], b[off+2], b[off+3] = NDPOptMTU, 1, 0, 0
		binary.BigEndian.PutUint32(b[off+4:], f.MTU)
		off += 8
	}
	encodeLLA(b[off:], NDPOptSourceLLA, f.SourceLLA)
}

// encode writes a prefix information option; the prefix is masked.
func (p *NDPPrefixInfo) encode(b []byte) {
	b[0], b[1] = NDPOptPrefixInfo, ndpPrefixInfoLen/8
	b[2] = uint8(p.Prefix.Bits())
	b[3] = 0
	if p.OnLink {
		b[3] |= ndpPrefixOnLink
	}
	if p.Autonomous {
		b[3] |= ndpPrefixAutonomous
	}
	binary.BigEndian.PutUint32(b[4:], clampUnits(p.ValidLifetime, time.Second, 0xffffffff))
	binary.BigEndian.PutUint32(b[8:], clampUnits(p.PreferredLifetime, time.Second, 0xffffffff))
	clear(b[12:16])
	if p.Prefix.IsValid() {
		put16(b[16:32], p.Prefix.Masked().Addr())
	} else {
		clear(b[16:32])
	}
}

// clampUnits is d in whole units, within [0, max].
func clampUnits(d, unit time.Duration, max uint32) uint32 {
	if d <= 0 {
		return 0
	}
	if d/unit >= time.Duration(max) {
		return max
	}
	return uint32(d / unit)
}

// NDPNeighborSolicitFields is a neighbor solicitation to encode.
type NDPNeighborSolicitFields struct {
	Target    netip.Addr
	SourceLLA *MAC // nil: no option (as duplicate address detection must, RFC 4861 §4.3)
}

func (f *NDPNeighborSolicitFields) Len() int {
	return icmpv6MinHeaderLen + ndpNSLen + llaLen(f.SourceLLA)
}

// Encode writes the message into b[:f.Len()].
func (f *NDPNeighborSolicitFields) Encode(b []byte) {
	ndpHeader(b, ICMPv6NeighborSolicit)
	put16(b[8:24], f.Target)
	encodeLLA(b[24:], NDPOptSourceLLA, f.SourceLLA)
}

// NDPNeighborAdvertFields is a neighbor advertisement to encode.
type NDPNeighborAdvertFields struct {
	Router, Solicited, Override bool
	Target                      netip.Addr
	TargetLLA                   *MAC
}

func (f *NDPNeighborAdvertFields) Len() int {
	return icmpv6MinHeaderLen + ndpNALen + llaLen(f.TargetLLA)
}

// Encode writes the message into b[:f.Len()].
func (f *NDPNeighborAdvertFields) Encode(b []byte) {
	ndpHeader(b, ICMPv6NeighborAdvert)
	if f.Router {
		b[4] |= NDPNARouter
	}
	if f.Solicited {
		b[4] |= NDPNASolicited
	}
	if f.Override {
		b[4] |= NDPNAOverride
	}
	put16(b[8:24], f.Target)
	encodeLLA(b[24:], NDPOptTargetLLA, f.TargetLLA)
}

// NDPRedirectFields is a redirect to encode.
type NDPRedirectFields struct {
	Target, Dst netip.Addr
	TargetLLA   *MAC
	Redirected  []byte // the start of the redirected packet, nil for none (RFC 4861 §4.6.3)
}

func (f *NDPRedirectFields) Len() int {
	n := icmpv6MinHeaderLen + ndpRedirectLen + llaLen(f.TargetLLA)
	if f.Redirected != nil {
		n += (8 + len(f.Redirected) + 7) &^ 7
	}
	return n
}

// Encode writes the message into b[:f.Len()]. A redirected packet too
// long for the option's length octet panics; RFC 4861 §4.6.3 keeps the
// whole redirect within the minimum MTU.
func (f *NDPRedirectFields) Encode(b []byte) {
	ndpHeader(b, ICMPv6Redirect)
	put16(b[8:24], f.Target)
	put16(b[24:40], f.Dst)
	off := 40 + encodeLLA(b[40:], NDPOptTargetLLA, f.TargetLLA)
	if f.Redirected != nil {
		n := (8 + len(f.Redirected) + 7) &^ 7
		if n > 255*8 {
			panic("wire: redirected header option longer than 2040 bytes")
		}
		o := b[off : off+n]
		o[0], o[1] = NDPOptRedirectedHeader, uint8(n/8)
		clear(o[2:8])
		clear(o[8+copy(o[8:], f.Redirected):])
	}
}
