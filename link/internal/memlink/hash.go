package memlink

import (
	"encoding/binary"

	"ustack/buf"
	"ustack/link"
	"ustack/wire"
)

// Flow hashing, as a NIC's receive-side scaling (RSS) does it: frames of
// one flow land on one receive queue, so each flow stays in order while
// different flows are carried up the stack on different goroutines.
//
//	IPv4/IPv6 + TCP/UDP/UDP-Lite/SCTP, not a fragment: addresses and ports
//	other IP (ICMP, fragments, IPv6 extension headers):  addresses only
//	anything else (ARP, unknown EtherTypes, runts):      queue 0
//
// The hash is symmetric (both directions of a flow hash alike: the two
// endpoints are combined with XOR), so that on loopback a connection's
// data and its ACKs meet on one queue, and on a pipe the two sides use
// the same queue index for a flow. It is unkeyed: in-memory links carry
// only what the process itself writes, and tests and benchmarks can
// predict where a flow goes (QueueOf). Fragments take the address-only
// hash so that all fragments of a datagram reach one reassembly on one
// queue; a flow whose datagrams are sometimes fragmented may see those
// reordered against its unfragmented ones, as with RSS on a NIC.

// maxHashHeader is the most bytes the hash reads: Ethernet with two VLAN
// tags, an IPv4 header with the longest options, and the ports.
const maxHashHeader = wire.EthernetHeaderLen + 2*wire.VLANTagLen + 60 + 4

// QueueOf returns the queue, in [0, n), on which a link of the given
// framing with n receive queues puts frame. It reads only the headers
// and does not allocate.
func QueueOf(frame []byte, t link.Type, n int) int {
	if n <= 1 {
		return 0
	}
	h, ok := flowHash(frame, t)
	if !ok {
		return 0
	}
	return int(uint64(h) * uint64(n) >> 32)
}

// queueOf is QueueOf for a packet whose headers may span views.
func queueOf(p *buf.Packet, t link.Type, n int) int {
	if p.NumViews() == 0 {
		return 0
	}
	b := p.View(0)
	var tmp [maxHashHeader]byte
	if len(b) < maxHashHeader && p.Len() > len(b) {
		m, _ := p.ReadAt(tmp[:min(p.Len(), maxHashHeader)], 0)
		b = tmp[:m]
	}
	return QueueOf(b, t, n)
}

// flowHash returns the symmetric flow hash of frame, and false when the
// frame is not IP (or too short to tell).
func flowHash(b []byte, t link.Type) (uint32, bool) {
	if t == link.TypeEthernet {
		if len(b) < wire.EthernetHeaderLen {
			return 0, false
		}
		et := wire.EtherType(binary.BigEndian.Uint16(b[12:]))
		b = b[wire.EthernetHeaderLen:]
		// Up to two 802.1Q/802.1ad tags (IEEE 802.1Q §9.3): the tag's
		// last two bytes are the inner EtherType.
		for i := 0; i < 2 && (et == wire.EtherTypeVLAN || et == wire.EtherTypeQinQ); i++ {
			if len(b) < wire.VLANTagLen {
				return 0, false
			}
			et = wire.EtherType(binary.BigEndian.Uint16(b[2:]))
			b = b[wire.VLANTagLen:]
		}
		switch et {
		case wire.EtherTypeIPv4, wire.EtherTypeIPv6:
		default:
			return 0, false
		}
	}
	if len(b) == 0 {
		return 0, false
	}
	var addrs uint64
	var ports uint32
	var l4 []byte
	var p wire.IPProtocol
	switch b[0] >> 4 {
	case 4:
		// RFC 791 §3.1: IHL in 32-bit words, at least 5.
		hl := int(b[0]&0x0f) * 4
		if len(b) < 20 || hl < 20 || len(b) < hl {
			return 0, false
		}
		addrs = uint64(binary.BigEndian.Uint32(b[12:]) ^ binary.BigEndian.Uint32(b[16:]))
		p = wire.IPProtocol(b[9])
		// More-fragments flag or a fragment offset: a fragment.
		if binary.BigEndian.Uint16(b[6:])&0x3fff == 0 {
			l4 = b[hl:]
		}
	case 6:
		// RFC 8200 §3: fixed 40-byte header; extension headers are not
		// walked (their flows take the address-only hash).
		if len(b) < 40 {
			return 0, false
		}
		for i := 8; i < 24; i += 8 {
			addrs ^= binary.BigEndian.Uint64(b[i:]) ^ binary.BigEndian.Uint64(b[i+16:])
		}
		p = wire.IPProtocol(b[6])
		l4 = b[40:]
	default:
		return 0, false
	}
	switch p {
	case wire.IPProtoTCP, wire.IPProtoUDP, ipProtoSCTP, ipProtoUDPLite:
		// Source and destination ports are the first four bytes of all
		// four headers.
		if len(l4) >= 4 {
			ports = uint32(binary.BigEndian.Uint16(l4) ^ binary.BigEndian.Uint16(l4[2:]))
			ports |= uint32(p) << 16
		}
	}
	return uint32(mix(addrs^uint64(ports)<<32) >> 32), true
}

const (
	ipProtoSCTP    wire.IPProtocol = 132 // RFC 9260
	ipProtoUDPLite wire.IPProtocol = 136 // RFC 3828
)

// mix is a 64-bit finalizer (the one of SplitMix64): every input bit
// affects every output bit, so the top bits used for the queue index
// spread well even when flows differ only in a port's low bits.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
