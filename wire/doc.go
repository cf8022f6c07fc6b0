// Package wire holds ustack's packet formats: parsing and encoding of
// Ethernet and 802.1Q, ARP, IPv4 and its options, ICMPv4, UDP and the TCP
// header with its options, and the Internet checksum.
//
// It is the lowest layer: pure functions over byte slices, no I/O, no time,
// no logging, no allocation on the parse path, and no panic on any input.
// Each format has two levels, in the manner of smoltcp:
//
//   - a view type over bytes (IPv4, UDP, ...) whose accessors read and write
//     fields in place; Parse<Format> checks lengths (and whatever else makes
//     the view safe) and is the only way to get a view from untrusted bytes,
//     after which no accessor panics;
//   - a fields struct (IPv4Fields, ...) with Encode, which writes a header
//     into a slice of the right Len.
package wire

import "errors"

// Errors returned by the parsers. They are sentinel values so callers can
// count drops by reason without allocating.
var (
	ErrTruncated   = errors.New("wire: truncated")
	ErrBadVersion  = errors.New("wire: bad version")
	ErrBadLength   = errors.New("wire: bad length field")
	ErrBadChecksum = errors.New("wire: bad checksum")
	ErrBadOption   = errors.New("wire: malformed option")
	ErrUnsupported = errors.New("wire: unsupported format")
)
