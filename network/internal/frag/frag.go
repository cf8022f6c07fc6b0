// Package frag is the output fragmentation core shared by the network
// protocols (layer: network, below ipv4 and ipv6, above proto and buf).
// It owns the cutting of a datagram's fragmentable part into pieces that
// fit a link, without copying: each piece is a buf.Packet made by Split
// that shares the datagram's storage.
//
// It does not build headers, choose identifications, decide whether a
// datagram may be fragmented or keep counters: the protocol prepends its
// own header to each piece (RFC 791 §3.2 for IPv4, RFC 8200 §4.5 for IPv6)
// and sends it.
//
// Rules applied here, the same for both families: a fragment offset
// counts 8-octet units, so every piece but the last carries a multiple of
// 8 bytes (RFC 791 §3.1, RFC 8200 §4.5); pieces come in order, each as
// large as the room allows; a partial checksum is finished first, as no
// fragment can carry one.
package frag

import (
	"syscall"

	"ustack/buf"
	"ustack/link/offload"
)

// Unit is the granularity of fragment offsets: 8 bytes.
const Unit = 8

// Split cuts payload, a datagram's fragmentable part (for IPv4 its data,
// for IPv6 what follows the per-fragment headers), into pieces and passes
// them in order to send with off, the piece's byte offset in payload, and
// more, whether pieces follow it. The first piece holds up to first
// bytes, the others up to rest bytes (IPv4 headers may be shorter after
// the first fragment, RFC 791 §3.1); both are rounded down to a multiple
// of Unit. A piece has payload's headroom rules: the protocol Prepends its
// header. Data is shared, not copied.
//
// A partial checksum (buf.Offload.NeedsCsum) is completed before the
// first cut.
//
// Split takes ownership of payload; send takes ownership of each piece.
// Errors: syscall.EMSGSIZE when first or rest leaves no room for one unit
// of data (nothing sent), offload.ErrCsumRange when the partial checksum
// cannot be completed (nothing sent); otherwise the first error send
// returned: the pieces after a failed one are still sent, as a link may
// fail one write and take the next.
func Split(payload *buf.Packet, first, rest int, send func(piece *buf.Packet, off int, more bool) error) error {
	first &^= Unit - 1
	rest &^= Unit - 1
	if first < Unit || rest < Unit {
		payload.Release()
		return syscall.EMSGSIZE
	}
	if err := offload.Complete(payload); err != nil {
		payload.Release()
		return err
	}
	off, room := 0, first
	var err error
	for payload != nil {
		piece := payload
		payload = nil
		if piece.Len() > room {
			payload = piece.Split(room)
		}
		n := piece.Len()
		if e := send(piece, off, payload != nil); e != nil && err == nil {
			err = e
		}
		off += n
		room = rest
	}
	return err
}
