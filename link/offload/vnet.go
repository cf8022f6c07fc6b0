// Package offload is the link layer's offload toolkit: the virtio-net header
// that TAP, TUN and AF_PACKET sockets put in front of each frame, software
// checksum completion, and software segmentation (GSO) of large TCP and UDP
// packets.
//
// Drivers use it on both paths:
//
//	receive:  device ─ vnet header ─▶ ParseHeader ─▶ PrepareRx ─▶ stack
//	                                   (Complete / SegmentFrame as the stack needs)
//	send:     stack ─▶ PrepareTx (for a device without offloads) ─▶ device
//	          stack ─▶ EncodeHeader ─ vnet header ─▶ device (with offloads)
//
// Offsets. buf.Offload.CsumStart and HdrLen count from the front of the
// packet as it is handed to or from a driver: from the Ethernet header on
// Ethernet links, from the IP header on IP links (this is what the
// virtio-net header means too). Segment works on a packet whose front is
// the IP header; SegmentFrame and PrepareRx take a link type and skip the
// link header themselves.
//
// Receive coalescing (GRO, gro.go) merges the in-order TCP segments of a
// batch into one large frame; a driver keeps a Coalescer per reader.
//
// The package does no I/O; its only state is a Coalescer's table of open
// flows within one batch, and the counters (Stats) drivers keep with
// it. It does not handle UFO (IPv4 fragmentation offload, which Linux no longer
// produces) and does not look inside tunnels.
package offload

import (
	"encoding/binary"
	"errors"
	"fmt"

	"ustack/buf"
)

// Sizes of the virtio-net header (virtio spec §5.1.6).
const (
	// HeaderLen is the size of struct virtio_net_hdr, what TAP/TUN
	// (TUNSETVNETHDRSZ 10) and AF_PACKET (PACKET_VNET_HDR) use.
	HeaderLen = 10
	// HeaderLenMrgRxbuf is the size of struct virtio_net_hdr_mrg_rxbuf,
	// which adds num_buffers.
	HeaderLenMrgRxbuf = 12
)

// Flags and GSO types of the virtio-net header (virtio spec §5.1.6,
// linux/virtio_net.h).
const (
	flagNeedsCsum = 0x01 // VIRTIO_NET_HDR_F_NEEDS_CSUM
	flagDataValid = 0x02 // VIRTIO_NET_HDR_F_DATA_VALID

	gsoNone  = 0x00 // VIRTIO_NET_HDR_GSO_NONE
	gsoTCPv4 = 0x01 // VIRTIO_NET_HDR_GSO_TCPV4
	gsoUDP   = 0x03 // VIRTIO_NET_HDR_GSO_UDP (UFO, unsupported)
	gsoTCPv6 = 0x04 // VIRTIO_NET_HDR_GSO_TCPV6
	gsoUDPL4 = 0x05 // VIRTIO_NET_HDR_GSO_UDP_L4
	gsoECN   = 0x80 // VIRTIO_NET_HDR_GSO_ECN
)

// Errors. They are sentinels so drivers count drops without allocating.
var (
	// ErrHeader: a virtio-net header is short or asks for something this
	// package does not support (UFO, an unknown GSO type).
	ErrHeader = errors.New("offload: bad virtio-net header")
	// ErrCsumRange: a partial checksum's start and offset fall outside
	// the packet.
	ErrCsumRange = errors.New("offload: checksum offsets out of range")
	// ErrMalformed: a GSO packet's IP or transport header is truncated,
	// malformed or does not match its GSO type.
	ErrMalformed = errors.New("offload: malformed GSO packet")
	// ErrGSOSize: a GSO packet has a zero segment size or would make more
	// than MaxSegments segments.
	ErrGSOSize = errors.New("offload: bad GSO segment size")
)

// ParseHeader decodes a virtio-net header from the front of b (10 bytes, or
// more; num_buffers of the 12-byte variant is ignored). Multi-byte fields
// are in the host's byte order, as legacy virtio and Linux TAP/TUN and
// AF_PACKET use on every host (they are little-endian on little-endian
// hosts, which is all the modern spec allows). The ECN bit of the GSO type
// is accepted: Segment always keeps CWR on the first segment only.
func ParseHeader(b []byte) (buf.Offload, error) {
	var o buf.Offload
	if len(b) < HeaderLen {
		return o, ErrHeader
	}
	flags, gso := b[0], b[1]
	o.HdrLen = binary.NativeEndian.Uint16(b[2:])
	o.GSOSize = binary.NativeEndian.Uint16(b[4:])
	o.NeedsCsum = flags&flagNeedsCsum != 0
	o.CsumValid = flags&flagDataValid != 0
	if o.NeedsCsum {
		o.CsumStart = binary.NativeEndian.Uint16(b[6:])
		o.CsumOffset = binary.NativeEndian.Uint16(b[8:])
	}
	switch gso &^ gsoECN {
	case gsoNone:
		o.GSOSize, o.HdrLen = 0, 0
	case gsoTCPv4:
		o.GSO = buf.GSOTCPv4
	case gsoTCPv6:
		o.GSO = buf.GSOTCPv6
	case gsoUDPL4:
		o.GSO = buf.GSOUDPL4
	default:
		return buf.Offload{}, ErrHeader
	}
	if o.GSO != buf.GSONone && o.GSOSize == 0 {
		return buf.Offload{}, ErrHeader
	}
	return o, nil
}

// EncodeHeader writes o as a virtio-net header into b, which must be
// HeaderLen or HeaderLenMrgRxbuf bytes long (num_buffers is written as 0,
// as a driver sending must). It fails for a GSO type it does not know.
func EncodeHeader(b []byte, o *buf.Offload) error {
	if len(b) != HeaderLen && len(b) != HeaderLenMrgRxbuf {
		return ErrHeader
	}
	clear(b)
	if o.NeedsCsum {
		b[0] |= flagNeedsCsum
		binary.NativeEndian.PutUint16(b[6:], o.CsumStart)
		binary.NativeEndian.PutUint16(b[8:], o.CsumOffset)
	} else if o.CsumValid {
		b[0] |= flagDataValid
	}
	switch o.GSO {
	case buf.GSONone:
		return nil
	case buf.GSOTCPv4:
		b[1] = gsoTCPv4
	case buf.GSOTCPv6:
		b[1] = gsoTCPv6
	case buf.GSOUDPL4:
		b[1] = gsoUDPL4
	default:
		return fmt.Errorf("%w: GSO type %v", ErrHeader, o.GSO)
	}
	binary.NativeEndian.PutUint16(b[2:], o.HdrLen)
	binary.NativeEndian.PutUint16(b[4:], o.GSOSize)
	return nil
}
