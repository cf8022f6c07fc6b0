package offload

import (
	"encoding/binary"
	"net/netip"

	"ustack/buf"
	"ustack/wire"
)

// MaxSegments bounds the number of segments Segment makes of one packet, so
// a bogus segment size from a device cannot make it allocate without end.
// A 64 KiB TCP packet at the smallest MSS Linux uses (88 bytes) makes 745.
const MaxSegments = 4096

// TCP flag bits in byte 13 of the TCP header (RFC 9293 §3.1, RFC 3168 §6.1).
const (
	tcpFIN = 0x01
	tcpPSH = 0x08
	tcpCWR = 0x80
)

const ipv6HeaderLen = 40

// layout is where the headers of a GSO packet lie.
type layout struct {
	v4     bool
	proto  wire.IPProtocol
	l4Off  int // offset of the transport header
	hdrLen int // l4Off plus the transport header's length
}

// Segment cuts the GSO packet pkt into packets of at most
// pkt.Offload.GSOSize payload bytes each, and appends them to out. The front
// of pkt must be the IP header: the link header is already stripped (use
// SegmentFrame for a whole frame).
//
// Each segment gets a copy of the IP and transport headers, fixed up as the
// sender's segmentation would have: IPv4 total length, an identification
// one higher than the segment before and a fresh header checksum; IPv6
// payload length; TCP sequence number advanced by the bytes before it, FIN
// and PSH only on the last segment and CWR only on the first (RFC 3168
// §6.1.2); UDP length (each UDP segment is a datagram of its own). The
// transport checksum of every segment is computed in full: the checksum in
// pkt is ignored, partial or not. Segments carry Offload{CsumValid: true}
// and pkt's IfIndex and Flags.
//
// Payloads are not copied: each segment is a fresh header chunk in front of
// a window of pkt's storage (buf.Packet.Split). Bytes past the IP length
// (link padding) are dropped. A packet whose GSO type is GSONone is
// appended as it is.
//
// Segment takes ownership of pkt. On error pkt is released and out is
// returned unchanged. IPv6 extension headers other than hop-by-hop and
// destination options are not supported.
func Segment(pkt *buf.Packet, out []*buf.Packet) ([]*buf.Packet, error) {
	o := pkt.Offload
	if o.GSO == buf.GSONone {
		return append(out, pkt), nil
	}
	l, err := parseLayout(pkt, o.GSO)
	if err != nil {
		pkt.Release()
		return out, err
	}
	size := int(o.GSOSize)
	payload := pkt.Len() - l.hdrLen
	n := 1
	if size == 0 {
		pkt.Release()
		return out, ErrGSOSize
	}
	if payload > size {
		n = (payload + size - 1) / size
	}
	first := min(size, payload)
	// Every segment's IP length field must hold its length.
	lenField := l.hdrLen + first
	if !l.v4 {
		lenField -= ipv6HeaderLen
	}
	if n > MaxSegments || lenField > 0xffff {
		pkt.Release()
		return out, ErrGSOSize
	}

	rest := pkt.Split(l.hdrLen)
	tmpl := pkt.Pullup(l.hdrLen) // pkt now holds only the headers
	var src, dst netip.Addr
	if l.v4 {
		src, dst = netip.AddrFrom4([4]byte(tmpl[12:16])), netip.AddrFrom4([4]byte(tmpl[16:20]))
	} else {
		src, dst = netip.AddrFrom16([16]byte(tmpl[8:24])), netip.AddrFrom16([16]byte(tmpl[24:40]))
	}
	id := binary.BigEndian.Uint16(tmpl[4:])
	var seq uint32
	var flags byte
	if l.proto == wire.IPProtoTCP {
		seq = binary.BigEndian.Uint32(tmpl[l.l4Off+4:])
		flags = tmpl[l.l4Off+13]
	}

	for i := 0; i < n; i++ {
		seg := rest
		if i < n-1 {
			rest = seg.Split(size)
		}
		segLen := seg.Len()
		h := seg.Prepend(l.hdrLen)
		copy(h, tmpl)
		if l.v4 {
			binary.BigEndian.PutUint16(h[2:], uint16(l.hdrLen+segLen))
			binary.BigEndian.PutUint16(h[4:], id+uint16(i))
			ihl := int(h[0]&0xf) * 4
			h[10], h[11] = 0, 0
			binary.BigEndian.PutUint16(h[10:], ^wire.Checksum(h[:ihl], 0))
		} else {
			binary.BigEndian.PutUint16(h[4:], uint16(l.hdrLen-ipv6HeaderLen+segLen))
		}
		l4 := h[l.l4Off:]
		l4Len := l.hdrLen - l.l4Off + segLen
		var field int
		if l.proto == wire.IPProtoTCP {
			binary.BigEndian.PutUint32(l4[4:], seq+uint32(i*size))
			f := flags
			if i > 0 {
				f &^= tcpCWR
			}
			if i < n-1 {
				f &^= tcpFIN | tcpPSH
			}
			l4[13] = f
			field = 16
		} else {
			binary.BigEndian.PutUint16(l4[4:], uint16(l4Len))
			field = 6
		}
		l4[field], l4[field+1] = 0, 0
		sum := wire.ChecksumCombine(wire.PseudoHeaderChecksum(l.proto, src, dst, l4Len), Sum(seg, l.l4Off, -1))
		c := ^sum
		if c == 0 && l.proto == wire.IPProtoUDP {
			c = 0xffff // RFC 768: zero means no checksum
		}
		binary.BigEndian.PutUint16(l4[field:], c)
		seg.Offload = buf.Offload{CsumValid: true}
		seg.IfIndex, seg.Flags = pkt.IfIndex, pkt.Flags
		out = append(out, seg)
	}
	pkt.Release()
	return out, nil
}

// parseLayout finds the headers of a GSO packet of type gso whose front is
// the IP header, checks them against the type, makes them contiguous and
// drops bytes past the IP length.
func parseLayout(pkt *buf.Packet, gso buf.GSOType) (layout, error) {
	var l layout
	b := pkt.Pullup(1)
	if b == nil {
		return l, ErrMalformed
	}
	var ipLen int // length from the IP header, 0 if the field is 0
	switch b[0] >> 4 {
	case 4:
		// RFC 791 §3.1.
		if gso == buf.GSOTCPv6 {
			return l, ErrMalformed
		}
		b = pkt.Pullup(wire.IPv4MinHeaderLen)
		if b == nil {
			return l, ErrMalformed
		}
		ihl := int(b[0]&0xf) * 4
		if ihl < wire.IPv4MinHeaderLen {
			return l, ErrMalformed
		}
		if binary.BigEndian.Uint16(b[6:])&(wire.IPv4FlagMF|0x1fff) != 0 {
			return l, ErrMalformed // a fragment cannot be segmented
		}
		l.v4, l.proto, l.l4Off = true, wire.IPProtocol(b[9]), ihl
		ipLen = int(binary.BigEndian.Uint16(b[2:]))
	case 6:
		// RFC 8200 §3, §4.
		if gso == buf.GSOTCPv4 {
			return l, ErrMalformed
		}
		b = pkt.Pullup(ipv6HeaderLen)
		if b == nil {
			return l, ErrMalformed
		}
		if plen := int(binary.BigEndian.Uint16(b[4:])); plen != 0 {
			ipLen = ipv6HeaderLen + plen
		}
		next, off := wire.IPProtocol(b[6]), ipv6HeaderLen
		for next == wire.IPProtoHopByHop || next == wire.IPProtoDstOpts {
			e := pkt.Pullup(off + 8)
			if e == nil {
				return l, ErrMalformed
			}
			next = wire.IPProtocol(e[off])
			off += (int(e[off+1]) + 1) * 8
		}
		l.proto, l.l4Off = next, off
	default:
		return l, ErrMalformed
	}
	want := wire.IPProtoTCP
	if gso == buf.GSOUDPL4 {
		want = wire.IPProtoUDP
	}
	if l.proto != want {
		return l, ErrMalformed
	}
	if want == wire.IPProtoTCP {
		t := pkt.Pullup(l.l4Off + 20)
		if t == nil {
			return l, ErrMalformed
		}
		doff := int(t[l.l4Off+12]>>4) * 4
		if doff < 20 {
			return l, ErrMalformed
		}
		l.hdrLen = l.l4Off + doff
	} else {
		l.hdrLen = l.l4Off + wire.UDPHeaderLen
	}
	if ipLen != 0 {
		if ipLen < l.hdrLen || ipLen > pkt.Len() {
			return l, ErrMalformed
		}
		pkt.Truncate(ipLen)
	}
	if pkt.Pullup(l.hdrLen) == nil {
		return l, ErrMalformed
	}
	return l, nil
}
