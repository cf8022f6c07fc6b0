package wire

import (
	"encoding/binary"
	"net/netip"
)

// IPv4 options (RFC 791 §3.1).
//
// The options area is a sequence of options of two forms: a single type
// octet (end of option list, no operation), or type, length (counting type
// and length) and data. Everything after an end-of-list option is padding.
// The type octet is a copied flag (1 bit: copy into every fragment), a class
// (2 bits) and a number (5 bits).

// IPv4OptionType is the type octet of an IPv4 option.
type IPv4OptionType uint8

const (
	IPv4OptEOL         IPv4OptionType = 0   // end of option list
	IPv4OptNOP         IPv4OptionType = 1   // no operation
	IPv4OptRecordRoute IPv4OptionType = 7   // RFC 791
	IPv4OptTimestamp   IPv4OptionType = 68  // RFC 791
	IPv4OptSecurity    IPv4OptionType = 130 // RFC 1108
	IPv4OptLSRR        IPv4OptionType = 131 // loose source and record route, RFC 791
	IPv4OptStreamID    IPv4OptionType = 136 // RFC 791, obsolete (RFC 6814)
	IPv4OptSSRR        IPv4OptionType = 137 // strict source and record route, RFC 791
	IPv4OptRouterAlert IPv4OptionType = 148 // RFC 2113
)

// Copied reports whether the option is copied into every fragment
// (RFC 791 §3.1; RFC 791 §3.2, fragmentation).
func (t IPv4OptionType) Copied() bool { return t&0x80 != 0 }

// Class is the option class: 0 control, 2 debugging and measurement.
func (t IPv4OptionType) Class() uint8 { return uint8(t>>5) & 3 }

// Number is the option number within its class.
func (t IPv4OptionType) Number() uint8 { return uint8(t) & 0x1f }

func (t IPv4OptionType) String() string {
	switch t {
	case IPv4OptEOL:
		return "eol"
	case IPv4OptNOP:
		return "nop"
	case IPv4OptRecordRoute:
		return "rr"
	case IPv4OptTimestamp:
		return "ts"
	case IPv4OptSecurity:
		return "security"
	case IPv4OptLSRR:
		return "lsrr"
	case IPv4OptStreamID:
		return "sid"
	case IPv4OptSSRR:
		return "ssrr"
	case IPv4OptRouterAlert:
		return "ra"
	}
	return "ipopt(" + itoa(int(t)) + ")"
}

// Flags of the timestamp option (RFC 791 §3.1, Internet Timestamp).
const (
	IPv4TSOnly       = 0 // time stamps only
	IPv4TSAndAddr    = 1 // each time stamp preceded by the recording address
	IPv4TSPrespecAdd = 3 // addresses prespecified; a node stamps its own
)

// IPv4Option is one option found by IPv4OptionIter. For a NOP, Data is
// empty. Off is the offset of the type octet within the options area
// (add IPv4MinHeaderLen for a position within the header).
type IPv4Option struct {
	Type IPv4OptionType
	Data []byte // the octets after type and length
	Off  int
}

// Len is the option's length on the wire.
func (o IPv4Option) Len() int {
	if o.Type == IPv4OptNOP || o.Type == IPv4OptEOL {
		return 1
	}
	return 2 + len(o.Data)
}

// Pointer is the pointer octet of a record route, source route or
// timestamp option (counted from the option's type octet, starting at 1);
// 0 if the option has no data.
func (o IPv4Option) Pointer() int {
	if len(o.Data) == 0 {
		return 0
	}
	return int(o.Data[0])
}

// RouteAddrs is the number of address slots in a record route or source
// route option.
func (o IPv4Option) RouteAddrs() int {
	if len(o.Data) < 1 {
		return 0
	}
	return (len(o.Data) - 1) / 4
}

// RouteAddr is the i-th address slot (0-based) of a record route or source
// route option; the zero Addr if there is no such slot.
func (o IPv4Option) RouteAddr(i int) netip.Addr {
	if i < 0 || i >= o.RouteAddrs() {
		return netip.Addr{}
	}
	return netip.AddrFrom4([4]byte(o.Data[1+4*i:]))
}

// TimestampFlags returns the overflow count and flag nibbles of a timestamp
// option (0, 0 if the option is too short).
func (o IPv4Option) TimestampFlags() (overflow, flag uint8) {
	if len(o.Data) < 2 {
		return 0, 0
	}
	return o.Data[1] >> 4, o.Data[1] & 0xf
}

// RouterAlert is the value of a router alert option (RFC 2113 §2.1: 0
// means "routers shall examine packet"); ok is false for another option or
// a wrong length.
func (o IPv4Option) RouterAlert() (value uint16, ok bool) {
	if o.Type != IPv4OptRouterAlert || len(o.Data) != 2 {
		return 0, false
	}
	return binary.BigEndian.Uint16(o.Data), true
}

// IPv4OptionIter walks an options area without allocating. It checks the
// framing of each option (a length octet present, at least 2, not past the
// end) but not its contents; see CheckIPv4Options for that.
//
//	it := wire.NewIPv4OptionIter(h.Options())
//	for opt, ok := it.Next(); ok; opt, ok = it.Next() { ... }
//	if it.Err() != nil { ... }
type IPv4OptionIter struct {
	opts []byte
	off  int // next option
	bad  int // offset of the octet in error
	err  error
}

// NewIPv4OptionIter returns an iterator over opts (IPv4.Options()).
func NewIPv4OptionIter(opts []byte) IPv4OptionIter { return IPv4OptionIter{opts: opts} }

// OptionIter returns an iterator over the header's options.
func (h IPv4) OptionIter() IPv4OptionIter { return NewIPv4OptionIter(h.Options()) }

// Next returns the next option. It returns ok == false at the end of the
// area, at an end-of-list option (what follows is padding and is not
// looked at), or on a malformed option, after which Err is ErrBadOption.
func (it *IPv4OptionIter) Next() (opt IPv4Option, ok bool) {
	if it.err != nil || it.off >= len(it.opts) {
		return IPv4Option{}, false
	}
	off := it.off
	t := IPv4OptionType(it.opts[off])
	switch t {
	case IPv4OptEOL:
		it.off = len(it.opts)
		return IPv4Option{}, false
	case IPv4OptNOP:
		it.off++
		return IPv4Option{Type: t, Data: it.opts[off+1 : off+1], Off: off}, true
	}
	if off+1 >= len(it.opts) {
		return it.fail(off)
	}
	n := int(it.opts[off+1])
	if n < 2 || n > len(it.opts)-off {
		return it.fail(off + 1)
	}
	it.off = off + n
	return IPv4Option{Type: t, Data: it.opts[off+2 : off+n], Off: off}, true
}

func (it *IPv4OptionIter) fail(bad int) (IPv4Option, bool) {
	it.err, it.bad, it.off = ErrBadOption, bad, len(it.opts)
	return IPv4Option{}, false
}

// Err is nil or ErrBadOption once Next has returned false.
func (it *IPv4OptionIter) Err() error { return it.err }

// BadOffset is the offset within the options area of the octet in error,
// valid when Err is not nil.
func (it *IPv4OptionIter) BadOffset() int { return it.bad }

// FindIPv4Option returns the first option of type t in opts. It stops at a
// malformed option: use CheckIPv4Options first to tell malformed from absent.
// Searching for IPv4OptEOL finds nothing.
func FindIPv4Option(opts []byte, t IPv4OptionType) (IPv4Option, bool) {
	it := NewIPv4OptionIter(opts)
	for o, ok := it.Next(); ok; o, ok = it.Next() {
		if o.Type == t {
			return o, true
		}
	}
	return IPv4Option{}, false
}

// FindOption is FindIPv4Option over the header's options.
func (h IPv4) FindOption(t IPv4OptionType) (IPv4Option, bool) {
	return FindIPv4Option(h.Options(), t)
}

// ValidateIPv4Options reports ErrBadOption if opts is not a well-formed
// options area (see CheckIPv4Options).
func ValidateIPv4Options(opts []byte) error {
	_, err := CheckIPv4Options(opts)
	return err
}

// CheckIPv4Options checks the framing of every option and the contents of
// the options this package knows. On error it returns ErrBadOption and the
// offset within opts of the octet in error, for the pointer of an ICMP
// parameter problem (RFC 792; add IPv4MinHeaderLen). Rules:
//
//   - framing as IPv4OptionIter; padding after end-of-list is ignored;
//   - record route, loose and strict source route (RFC 791): length at
//     least 3, pointer at least 4, and a pointer that is not past the end
//     must leave room for a whole address;
//   - timestamp (RFC 791): length at least 4, pointer at least 5, flag 0, 1
//     or 3, and a pointer that is not past the end must leave room for a
//     whole entry (4 bytes, or 8 with an address);
//   - router alert (RFC 2113 §2.1) and stream ID: length 4;
//   - security (RFC 1108 §2): length at least 3;
//   - record route, timestamp, source route (loose or strict), security and
//     stream ID each appear at most once (RFC 791 §3.1);
//   - other types: framing only (RFC 1122 §3.2.1.8: ignore options not
//     understood).
func CheckIPv4Options(opts []byte) (bad int, err error) {
	var seen uint8
	const (
		seenRR = 1 << iota
		seenTS
		seenSR
		seenSec
		seenSID
	)
	once := func(bit uint8) bool {
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		return true
	}
	it := NewIPv4OptionIter(opts)
	for o, ok := it.Next(); ok; o, ok = it.Next() {
		n := 2 + len(o.Data)
		switch o.Type {
		case IPv4OptRecordRoute, IPv4OptLSRR, IPv4OptSSRR:
			bit := uint8(seenRR)
			if o.Type != IPv4OptRecordRoute {
				bit = seenSR
			}
			if !once(bit) {
				return o.Off, ErrBadOption
			}
			if n < 3 {
				return o.Off + 1, ErrBadOption
			}
			if p := o.Pointer(); p < 4 || p <= n && p+3 > n {
				return o.Off + 2, ErrBadOption
			}
		case IPv4OptTimestamp:
			if !once(seenTS) {
				return o.Off, ErrBadOption
			}
			if n < 4 {
				return o.Off + 1, ErrBadOption
			}
			_, flag := o.TimestampFlags()
			size := 8
			switch flag {
			case IPv4TSOnly:
				size = 4
			case IPv4TSAndAddr, IPv4TSPrespecAdd:
			default:
				return o.Off + 3, ErrBadOption
			}
			if p := o.Pointer(); p < 5 || p <= n && p+size-1 > n {
				return o.Off + 2, ErrBadOption
			}
		case IPv4OptRouterAlert, IPv4OptStreamID:
			if o.Type == IPv4OptStreamID && !once(seenSID) {
				return o.Off, ErrBadOption
			}
			if n != 4 {
				return o.Off + 1, ErrBadOption
			}
		case IPv4OptSecurity:
			if !once(seenSec) {
				return o.Off, ErrBadOption
			}
			if n < 3 {
				return o.Off + 1, ErrBadOption
			}
		}
	}
	if it.Err() != nil {
		return it.BadOffset(), it.Err()
	}
	return 0, nil
}

// CheckOptions is CheckIPv4Options over the header's options; bad is an
// offset within the options area.
func (h IPv4) CheckOptions() (bad int, err error) { return CheckIPv4Options(h.Options()) }

// IPv4OptionFields is one option to encode into IPv4Fields.Options.
type IPv4OptionFields struct {
	Type IPv4OptionType
	Data []byte // after type and length; ignored for EOL and NOP
}

// Len is the encoded length: 1 for EOL and NOP, else 2+len(Data).
func (f *IPv4OptionFields) Len() int {
	if f.Type == IPv4OptEOL || f.Type == IPv4OptNOP {
		return 1
	}
	return 2 + len(f.Data)
}

// Encode writes the option into b[:f.Len()]. Data longer than 253 bytes
// cannot be encoded (and cannot fit an IPv4 header): Encode panics.
func (f *IPv4OptionFields) Encode(b []byte) {
	n := f.Len()
	if n > 255 {
		panic("wire: IPv4 option longer than 255 bytes")
	}
	b[0] = uint8(f.Type)
	if n == 1 {
		return
	}
	b[1] = uint8(n)
	copy(b[2:n], f.Data)
}

// IPv4RouterAlertLen is the length of a router alert option: a multiple of
// 4, so it fills IPv4Fields.Options with no padding.
const IPv4RouterAlertLen = 4

// EncodeIPv4RouterAlert writes a router alert option (RFC 2113 §2.1) with
// the given value (0: routers examine the packet; used by IGMPv2, RFC 2236
// §2, and IGMPv3) into b[:IPv4RouterAlertLen].
func EncodeIPv4RouterAlert(b []byte, value uint16) {
	_ = b[IPv4RouterAlertLen-1]
	b[0] = uint8(IPv4OptRouterAlert)
	b[1] = IPv4RouterAlertLen
	binary.BigEndian.PutUint16(b[2:], value)
}
