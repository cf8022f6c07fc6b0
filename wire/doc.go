// Package wire holds ustack's packet formats: parsing and encoding of
// Ethernet II and 802.1Q/802.1ad VLAN tags, ARP, IPv4 and its options,
// ICMPv4, UDP and the TCP header with its options, and the Internet
// checksum (RFC 1071, incremental update per RFC 1624).
//
// It is the lowest layer: pure functions over byte slices, no I/O, no time,
// no logging, no allocation on the parse path, and no panic on any input.
// It does not demultiplex, reassemble, validate protocol state or decide
// what to do with a packet: that is the network and transport layers' job.
// Each format has two levels, in the manner of smoltcp:
//
//   - a view type over bytes (IPv4, UDP, TCP, ...) whose accessors read and
//     write fields in place; Parse<Format> checks lengths (and whatever else
//     makes the view safe) and is the only way to get a view from untrusted
//     bytes, after which no accessor panics;
//   - a fields struct (IPv4Fields, TCPFields, ...) with Len and Encode, which
//     writes a header into a slice of at least Len bytes. Encoders trust
//     their input (a short slice panics, as a slice index does).
//
// Options are walked by allocation-free iterators (IPv4OptionIter,
// TCPOptionIter); TCP options also parse into TCPOptions, a struct of
// fixed-size fields that encodes back with the layout Linux uses.
//
// Files: types.go (MAC, EtherType, IPProtocol), checksum.go, ethernet.go,
// vlan.go (tags and ParseEthernetFrame), arp.go, ipv4.go, ipv4opt.go,
// icmpv4.go, udp.go, tcp.go, tcpopt.go.
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
