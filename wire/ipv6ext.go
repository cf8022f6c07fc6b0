package wire

import (
	"encoding/binary"
	"errors"
)

// IPv6 extension headers (RFC 8200 §4).
//
// After the fixed header comes a chain of headers, each naming the next in
// its first octet, ending at an upper-layer header (TCP, UDP, ICMPv6, ...)
// or "no next header". Every extension header but the fragment header
// (fixed 8 bytes) and AH (RFC 4302 §2.2, length in 4-byte units minus 2)
// uses the uniform format of RFC 6564 §4: next header, length in 8-byte
// units not counting the first 8, then data.
//
//	fixed header | hop-by-hop | routing | fragment | dst opts | upper layer
//	 next=0        next=43      next=44    next=60    next=6

// Protocol numbers of the extension headers that have no constant in
// types.go (IANA "IPv6 Extension Header Types", RFC 7045).
const (
	IPProtoESP      IPProtocol = 50  // RFC 4303
	IPProtoAH       IPProtocol = 51  // RFC 4302
	IPProtoMobility IPProtocol = 135 // RFC 6275
	IPProtoHIP      IPProtocol = 139 // RFC 7401
	IPProtoShim6    IPProtocol = 140 // RFC 5533
	IPProtoExp253   IPProtocol = 253 // RFC 3692, RFC 4727
	IPProtoExp254   IPProtocol = 254
)

// ErrBadHeaderChain reports an extension header where RFC 8200 §4.1 does
// not allow it: a hop-by-hop options header anywhere but first.
var ErrBadHeaderChain = errors.New("wire: bad IPv6 extension header chain")

// IsIPv6ExtHeader reports whether p is an extension header that
// IPv6ExtIter walks through: hop-by-hop, routing, fragment, destination
// options, AH, mobility, HIP, shim6 and the experimental 253 and 254
// (RFC 7045 §2). ESP (50) is not: what follows it is encrypted, so a walk
// ends at it as at an upper layer; neither is no-next-header (59).
func IsIPv6ExtHeader(p IPProtocol) bool {
	switch p {
	case IPProtoHopByHop, IPProtoRouting, IPProtoFragment, IPProtoDstOpts,
		IPProtoAH, IPProtoMobility, IPProtoHIP, IPProtoShim6, IPProtoExp253, IPProtoExp254:
		return true
	}
	return false
}

// IPv6Ext is one extension header found by IPv6ExtIter.
type IPv6Ext struct {
	Type   IPProtocol // what the previous header named it
	Offset int        // of its first byte within the iterator's bytes
	Len    int        // its length on the wire, a multiple of 8 except for AH
	Data   []byte     // the whole header: b[Offset:Offset+Len]
}

// NextHeader is the protocol of the header after this one.
func (e IPv6Ext) NextHeader() IPProtocol { return IPProtocol(e.Data[0]) }

// Options is the option area of a hop-by-hop or destination options header
// (after the next-header and length octets), for NewIPv6OptIter; nil for
// other types.
func (e IPv6Ext) Options() []byte {
	if e.Type != IPProtoHopByHop && e.Type != IPProtoDstOpts {
		return nil
	}
	return e.Data[2:]
}

// IPv6ExtIter walks an extension header chain without allocating.
//
//	it := wire.NewIPv6ExtIter(h.NextHeader(), h.Payload())
//	for ext, ok := it.Next(); ok; ext, ok = it.Next() { ... }
//	if it.Err() != nil { ... }
//	upper, data := it.Upper(), h.Payload()[it.UpperOffset():]
//
// It checks framing (each header within b) and that a hop-by-hop header is
// first. It does not limit the chain's length (the caller counts), look
// inside options, or check routing types: those are policy.
//
// A fragment header whose offset is not zero is followed by the middle of
// the fragmentable part, not by a header: the walk ends after it, with
// Upper the fragment header's next header and UpperOffset just after it.
// In a first fragment (offset 0) the walk goes on, so a chain that runs
// past the fragment's end gives ErrTruncated (RFC 7112 §5).
type IPv6ExtIter struct {
	b     []byte
	next  IPProtocol // type of the header at off
	off   int        // offset of the next header to look at
	nhOff int        // offset of the next-header field naming it
	done  bool
	err   error
	bad   int
}

// NewIPv6ExtIter returns an iterator over b, the bytes after the fixed
// header (IPv6.Payload()), where first is the fixed header's next header.
func NewIPv6ExtIter(first IPProtocol, b []byte) IPv6ExtIter {
	return IPv6ExtIter{b: b, next: first, nhOff: ipv6NextHeaderOff}
}

// ipv6NextHeaderOff is the offset of the fixed header's next-header field
// relative to the byte after the fixed header.
const ipv6NextHeaderOff = 6 - IPv6HeaderLen

// Next returns the next extension header. It returns ok == false at the
// first header that is not an extension header (see Upper), or on an
// error (see Err).
func (it *IPv6ExtIter) Next() (ext IPv6Ext, ok bool) {
	if it.done || it.err != nil {
		return IPv6Ext{}, false
	}
	t := it.next
	if !IsIPv6ExtHeader(t) {
		it.done = true
		return IPv6Ext{}, false
	}
	if t == IPProtoHopByHop && it.off != 0 {
		return it.fail(ErrBadHeaderChain, it.nhOff)
	}
	rest := it.b[it.off:]
	if len(rest) < 8 {
		return it.fail(ErrTruncated, it.off)
	}
	var n int
	switch t {
	case IPProtoFragment:
		n = IPv6FragmentLen
	case IPProtoAH:
		n = (int(rest[1]) + 2) * 4
	default:
		n = (int(rest[1]) + 1) * 8
	}
	if n > len(rest) {
		return it.fail(ErrTruncated, it.off+1)
	}
	ext = IPv6Ext{Type: t, Offset: it.off, Len: n, Data: rest[:n:n]}
	it.nhOff, it.off, it.next = it.off, it.off+n, IPProtocol(rest[0])
	if t == IPProtoFragment && IPv6Fragment(rest).Offset() != 0 {
		it.done = true
	}
	return ext, true
}

func (it *IPv6ExtIter) fail(err error, bad int) (IPv6Ext, bool) {
	it.err, it.bad = err, bad
	return IPv6Ext{}, false
}

// Err is nil, ErrTruncated (a header runs past the end) or
// ErrBadHeaderChain once Next has returned false.
func (it *IPv6ExtIter) Err() error { return it.err }

// BadOffset is, when Err is not nil, the offset within b of the octet in
// error: the next-header field naming a misplaced hop-by-hop header
// (IPv6HeaderLen+BadOffset is then the pointer of an ICMPv6 parameter
// problem, RFC 8200 §4.1; -34 is the fixed header's field), or the start
// or length octet of a truncated header.
func (it *IPv6ExtIter) BadOffset() int { return it.bad }

// Upper is the protocol of the header after the last extension header once
// Next has returned false with a nil Err: an upper layer, ESP, or
// IPProtoNoNext.
func (it *IPv6ExtIter) Upper() IPProtocol { return it.next }

// UpperOffset is the offset within b at which the Upper header starts.
func (it *IPv6ExtIter) UpperOffset() int { return it.off }

// NextHeaderOffset is the offset within b of the next-header field that
// named Upper (negative, -34, for the fixed header's): add IPv6HeaderLen for
// the pointer of an ICMPv6 parameter problem, code unrecognized next header
// (RFC 8200 §4, RFC 4443 §3.4).
func (it *IPv6ExtIter) NextHeaderOffset() int { return it.nhOff }

// IPv6 fragment header (RFC 8200 §4.5):
//
//	next header(8) reserved(8) offset(13) res(2) M(1) identification(32)
const IPv6FragmentLen = 8

// IPv6Fragment is a view of a fragment header.
type IPv6Fragment []byte

// ParseIPv6Fragment checks that b holds a fragment header.
func ParseIPv6Fragment(b []byte) (IPv6Fragment, error) {
	if len(b) < IPv6FragmentLen {
		return nil, ErrTruncated
	}
	return IPv6Fragment(b[:IPv6FragmentLen]), nil
}

func (f IPv6Fragment) NextHeader() IPProtocol { return IPProtocol(f[0]) }

// Offset is the fragment offset in bytes (a multiple of 8).
func (f IPv6Fragment) Offset() int         { return int(binary.BigEndian.Uint16(f[2:]) &^ 7) }
func (f IPv6Fragment) MoreFragments() bool { return f[3]&1 != 0 }
func (f IPv6Fragment) ID() uint32          { return binary.BigEndian.Uint32(f[4:]) }

// IsAtomic reports an atomic fragment: offset 0 and no more fragments, a
// whole packet behind a fragment header, which is processed on its own and
// never mixed with other fragments (RFC 6946 §4).
func (f IPv6Fragment) IsAtomic() bool { return binary.BigEndian.Uint16(f[2:])&^6 == 0 }

// IPv6FragmentFields are the fields of a fragment header.
type IPv6FragmentFields struct {
	NextHeader IPProtocol
	Offset     int // in bytes, a multiple of 8, below 65536
	More       bool
	ID         uint32
}

// Len is IPv6FragmentLen.
func (f *IPv6FragmentFields) Len() int { return IPv6FragmentLen }

// Encode writes the header into b[:8], reserved fields zero.
func (f *IPv6FragmentFields) Encode(b []byte) {
	_ = b[IPv6FragmentLen-1]
	b[0] = uint8(f.NextHeader)
	b[1] = 0
	w := uint16(f.Offset) &^ 7
	if f.More {
		w |= 1
	}
	binary.BigEndian.PutUint16(b[2:], w)
	binary.BigEndian.PutUint32(b[4:], f.ID)
}

// IPv6 routing header (RFC 8200 §4.4):
//
//	next header(8) hdr ext len(8) routing type(8) segments left(8) data
const (
	IPv6RoutingType0   = 0 // deprecated, must not be processed (RFC 5095 §3)
	IPv6RoutingType2   = 2 // Mobile IPv6 (RFC 6275 §6.4)
	IPv6RoutingTypeRPL = 3 // RFC 6554
	IPv6RoutingTypeSRH = 4 // segment routing (RFC 8754)
)

// IPv6Routing is a view of a routing header.
type IPv6Routing []byte

// ParseIPv6Routing checks that b holds a whole routing header (the Data of
// an IPv6Ext of type IPProtoRouting qualifies).
func ParseIPv6Routing(b []byte) (IPv6Routing, error) {
	if len(b) < 8 {
		return nil, ErrTruncated
	}
	n := (int(b[1]) + 1) * 8
	if n > len(b) {
		return nil, ErrTruncated
	}
	return IPv6Routing(b[:n]), nil
}

func (r IPv6Routing) NextHeader() IPProtocol { return IPProtocol(r[0]) }
func (r IPv6Routing) RoutingType() uint8     { return r[2] }
func (r IPv6Routing) SegmentsLeft() uint8    { return r[3] }

// Data is the type-specific data after the first four octets.
func (r IPv6Routing) Data() []byte { return r[4:] }

// IPv6SegmentsLeftOffset is the offset of the segments-left octet within the
// header, for the pointer of a parameter problem on an unrecognized
// routing type (RFC 8200 §4.4).
const IPv6SegmentsLeftOffset = 3
