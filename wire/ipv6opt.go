package wire

import "encoding/binary"

// Options of the IPv6 hop-by-hop and destination options headers
// (RFC 8200 §4.2): type-length-value, the length counting only the value,
// except Pad1, a single zero octet. The two high bits of the type say what
// a node that does not know the option must do; the third says whether the
// value may change en route.

// Option types (IANA "Destination Options and Hop-by-Hop Options").
const (
	IPv6OptPad1          uint8 = 0x00 // RFC 8200 §4.2
	IPv6OptPadN          uint8 = 0x01 // RFC 8200 §4.2
	IPv6OptTunnelLimit   uint8 = 0x04 // tunnel encapsulation limit, RFC 2473 §5.1
	IPv6OptRouterAlert   uint8 = 0x05 // RFC 2711
	IPv6OptJumbo         uint8 = 0xc2 // jumbo payload, RFC 2675
	IPv6OptHomeAddress   uint8 = 0xc9 // RFC 6275 §6.3
	ipv6OptChangeEnRoute       = 0x20
)

// Actions for an unrecognized option, from the two high bits of its type
// (RFC 8200 §4.2).
const (
	IPv6OptActionSkip               uint8 = 0 // skip over the option
	IPv6OptActionDiscard            uint8 = 1 // discard the packet silently
	IPv6OptActionDiscardICMP        uint8 = 2 // discard, send a parameter problem (code 2)
	IPv6OptActionDiscardICMPUnicast uint8 = 3 // discard, and send it only if the destination is not multicast
)

// Values of the router alert option (RFC 2711 §2.1).
const (
	IPv6RouterAlertMLD  uint16 = 0
	IPv6RouterAlertRSVP uint16 = 1
)

// IPv6Option is one option found by IPv6OptIter. Data is the value (empty
// for Pad1). Offset is the offset of the type octet within the option
// area; within the packet it is IPv6HeaderLen + ext.Offset + 2 + Offset,
// the pointer of a parameter problem for an unrecognized option.
type IPv6Option struct {
	Type   uint8
	Data   []byte
	Offset int
}

// Action is what to do with the packet if the option is not recognized:
// one of the IPv6OptAction constants.
func (o IPv6Option) Action() uint8 { return o.Type >> 6 }

// ChangesEnRoute reports whether the option's data may change on the way
// (and counts as zero for an authentication header, RFC 8200 §4.2).
func (o IPv6Option) ChangesEnRoute() bool { return o.Type&ipv6OptChangeEnRoute != 0 }

// Len is the option's length on the wire.
func (o IPv6Option) Len() int {
	if o.Type == IPv6OptPad1 {
		return 1
	}
	return 2 + len(o.Data)
}

// IsPadding reports Pad1 and PadN.
func (o IPv6Option) IsPadding() bool { return o.Type == IPv6OptPad1 || o.Type == IPv6OptPadN }

// RouterAlert is the value of a router alert option (RFC 2711 §2.1); ok
// is false for another option or a length other than 2.
func (o IPv6Option) RouterAlert() (value uint16, ok bool) {
	if o.Type != IPv6OptRouterAlert || len(o.Data) != 2 {
		return 0, false
	}
	return binary.BigEndian.Uint16(o.Data), true
}

// IPv6OptIter walks the option area of a hop-by-hop or destination options
// header without allocating, checking that each option lies within it. It
// yields padding too; it does not check alignment or padding contents.
type IPv6OptIter struct {
	b   []byte
	off int
	bad int
	err error
}

// NewIPv6OptIter returns an iterator over data, the option area after the
// next-header and length octets (IPv6Ext.Options()).
func NewIPv6OptIter(data []byte) IPv6OptIter { return IPv6OptIter{b: data} }

// Next returns the next option. It returns ok == false at the end of the
// area or on an option that runs past it, after which Err is ErrBadOption.
func (it *IPv6OptIter) Next() (opt IPv6Option, ok bool) {
	if it.err != nil || it.off >= len(it.b) {
		return IPv6Option{}, false
	}
	off := it.off
	t := it.b[off]
	if t == IPv6OptPad1 {
		it.off++
		return IPv6Option{Type: t, Data: it.b[off+1 : off+1], Offset: off}, true
	}
	if off+2 > len(it.b) {
		it.err, it.bad, it.off = ErrBadOption, off, len(it.b)
		return IPv6Option{}, false
	}
	end := off + 2 + int(it.b[off+1])
	if end > len(it.b) {
		it.err, it.bad, it.off = ErrBadOption, off+1, len(it.b)
		return IPv6Option{}, false
	}
	it.off = end
	return IPv6Option{Type: t, Data: it.b[off+2 : end : end], Offset: off}, true
}

// Err is nil or ErrBadOption once Next has returned false.
func (it *IPv6OptIter) Err() error { return it.err }

// BadOffset is the offset within the area of the octet in error, valid
// when Err is not nil.
func (it *IPv6OptIter) BadOffset() int { return it.bad }

// IPv6OptionFields is one option to encode.
type IPv6OptionFields struct {
	Type uint8
	Data []byte // the value, at most 255 bytes; ignored for Pad1
}

// Len is 1 for Pad1, else 2+len(Data).
func (f *IPv6OptionFields) Len() int {
	if f.Type == IPv6OptPad1 {
		return 1
	}
	return 2 + len(f.Data)
}

// Encode writes the option into b[:f.Len()]. Data over 255 bytes panics.
func (f *IPv6OptionFields) Encode(b []byte) {
	if f.Type == IPv6OptPad1 {
		b[0] = 0
		return
	}
	if len(f.Data) > 255 {
		panic("wire: IPv6 option longer than 255 bytes")
	}
	b[0], b[1] = f.Type, uint8(len(f.Data))
	copy(b[2:2+len(f.Data)], f.Data)
}

// IPv6OptionsHeaderFields is a hop-by-hop or destination options header to
// encode: the options in order, then padding to a multiple of 8 bytes.
type IPv6OptionsHeaderFields struct {
	NextHeader IPProtocol
	Options    []IPv6OptionFields
}

// Len is the encoded length: 2 + the options, rounded up to 8.
func (f *IPv6OptionsHeaderFields) Len() int {
	n := 2
	for i := range f.Options {
		n += f.Options[i].Len()
	}
	return (n + 7) &^ 7
}

// Encode writes the header into b[:f.Len()], padding with Pad1 (one byte)
// or PadN (RFC 8200 §4.2). A header over 2048 bytes panics.
func (f *IPv6OptionsHeaderFields) Encode(b []byte) {
	n := f.Len()
	if n > 2048 {
		panic("wire: IPv6 options header longer than 2048 bytes")
	}
	b = b[:n]
	b[0], b[1] = uint8(f.NextHeader), uint8(n/8-1)
	off := 2
	for i := range f.Options {
		f.Options[i].Encode(b[off:])
		off += f.Options[i].Len()
	}
	switch pad := n - off; pad {
	case 0:
	case 1:
		b[off] = IPv6OptPad1
	default:
		b[off], b[off+1] = IPv6OptPadN, uint8(pad-2)
		clear(b[off+2:])
	}
}

// IPv6RouterAlertHeaderLen is the length of the hop-by-hop header written
// by EncodeIPv6RouterAlertHeader.
const IPv6RouterAlertHeaderLen = 8

// EncodeIPv6RouterAlertHeader writes a hop-by-hop options header holding a
// router alert option with value (IPv6RouterAlertMLD for MLD messages,
// RFC 3810 §5; RFC 2711) and a PadN of 2 bytes into b[:8]: the layout
// Linux sends.
func EncodeIPv6RouterAlertHeader(b []byte, next IPProtocol, value uint16) {
	_ = b[IPv6RouterAlertHeaderLen-1]
	b[0], b[1] = uint8(next), 0
	b[2], b[3] = IPv6OptRouterAlert, 2
	binary.BigEndian.PutUint16(b[4:], value)
	b[6], b[7] = IPv6OptPadN, 0
}
