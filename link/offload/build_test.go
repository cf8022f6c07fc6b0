package offload

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"

	"ustack/buf"
	"ustack/wire"
)

// Test packet builders and the segment checker shared by the table tests
// and the fuzz targets. They work on raw bytes so that they don't share
// code with what they test.

var (
	src4 = netip.MustParseAddr("10.200.0.1")
	dst4 = netip.MustParseAddr("10.200.0.2")
	src6 = netip.MustParseAddr("fd00:200::1")
	dst6 = netip.MustParseAddr("fd00:200::2")
)

// spec describes a test packet.
type spec struct {
	v6        bool
	udp       bool
	ipOpts    []byte // IPv4 options, multiple of 4
	hopByHop  int    // IPv6: add a hop-by-hop header of this many 8-byte units (0: none)
	tcpOpts   []byte // multiple of 4
	tcpFlags  byte
	seq       uint32
	id        uint16
	payload   int
	badCsum   bool   // leave a garbage transport checksum
	ipLenZero bool   // leave the IP length field 0 (as for very large GSO packets)
	sport     uint16 // source port (0: 4000)
	ttl       byte   // IPv4 TTL, IPv6 hop limit (0: 64)
	wnd       uint16 // TCP window (0: 65535)
	payloadAt int    // offset into the payload pattern (for consecutive segments)
}

func payloadBytes(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7 + i>>8 + 1)
	}
	return p
}

// build returns the bytes of the packet s describes, with a correct
// transport checksum (unless s.badCsum).
func build(s spec) []byte {
	var l4 []byte
	if s.udp {
		l4 = make([]byte, 8)
		binary.BigEndian.PutUint16(l4[0:], 4000)
		binary.BigEndian.PutUint16(l4[2:], 5000)
		binary.BigEndian.PutUint16(l4[4:], uint16(8+s.payload))
	} else {
		l4 = make([]byte, 20+len(s.tcpOpts))
		binary.BigEndian.PutUint16(l4[0:], cmp.Or(s.sport, 4000))
		binary.BigEndian.PutUint16(l4[2:], 5000)
		binary.BigEndian.PutUint32(l4[4:], s.seq)
		binary.BigEndian.PutUint32(l4[8:], 0x01020304)
		l4[12] = byte(len(l4)/4) << 4
		l4[13] = s.tcpFlags
		binary.BigEndian.PutUint16(l4[14:], cmp.Or(s.wnd, 65535))
		copy(l4[20:], s.tcpOpts)
	}
	l4 = append(l4, payloadBytes(s.payloadAt + s.payload)[s.payloadAt:]...)
	proto := wire.IPProtoTCP
	csumAt := 16
	if s.udp {
		proto, csumAt = wire.IPProtoUDP, 6
	}
	src, dst := src4, dst4
	if s.v6 {
		src, dst = src6, dst6
	}
	c := ^wire.ChecksumCombine(wire.PseudoHeaderChecksum(proto, src, dst, len(l4)), wire.Checksum(l4, 0))
	if s.badCsum {
		c = 0xdead
	}
	binary.BigEndian.PutUint16(l4[csumAt:], c)

	var ip []byte
	if !s.v6 {
		ip = make([]byte, 20+len(s.ipOpts))
		ip[0] = 0x40 | byte(len(ip)/4)
		if !s.ipLenZero {
			binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)+len(l4)))
		}
		binary.BigEndian.PutUint16(ip[4:], s.id)
		binary.BigEndian.PutUint16(ip[6:], wire.IPv4FlagDF)
		ip[8], ip[9] = cmp.Or(s.ttl, 64), byte(proto)
		copy(ip[12:], src.AsSlice())
		copy(ip[16:], dst.AsSlice())
		copy(ip[20:], s.ipOpts)
		binary.BigEndian.PutUint16(ip[10:], ^wire.Checksum(ip, 0))
	} else {
		ip = make([]byte, 40)
		ip[0] = 0x60
		ip[6], ip[7] = byte(proto), cmp.Or(s.ttl, 64)
		copy(ip[8:], src.AsSlice())
		copy(ip[24:], dst.AsSlice())
		if s.hopByHop > 0 {
			ext := make([]byte, 8*s.hopByHop)
			ext[0], ext[1] = byte(proto), byte(s.hopByHop-1)
			ext[2] = 1 // PadN
			ext[3] = byte(len(ext) - 4)
			ip[6] = byte(wire.IPProtoHopByHop)
			ip = append(ip, ext...)
		}
		if !s.ipLenZero {
			binary.BigEndian.PutUint16(ip[4:], uint16(len(ip)-40+len(l4)))
		}
	}
	return append(ip, l4...)
}

// packetOf makes a packet of b whose data is split into views at cuts
// (offsets in increasing order), to exercise multi-view paths.
func packetOf(b []byte, cuts ...int) *buf.Packet {
	prev := 0
	var p *buf.Packet
	for _, c := range append(cuts, len(b)) {
		if c < prev || c > len(b) {
			continue
		}
		q := buf.FromBytes(b[prev:c])
		if p == nil {
			p = q
		} else {
			p.Concat(q)
		}
		prev = c
	}
	return p
}

// parsed is what the checker reads from a packet, independently of the
// code under test.
type parsed struct {
	v4             bool
	proto          wire.IPProtocol
	l4Off, hdrLen  int
	ipLen          int // from the length field, 0 if it is 0
	src, dst       netip.Addr
	id             uint16
	seq            uint32
	flags          byte
	headers, data  []byte
	ipCsumOK, l4OK bool
}

// parse reads an IPv4/IPv6 + TCP/UDP packet; ok is false when the packet
// is not one.
func parse(b []byte) (p parsed, ok bool) {
	if len(b) < 1 {
		return p, false
	}
	switch b[0] >> 4 {
	case 4:
		if len(b) < 20 || int(b[0]&0xf)*4 < 20 || len(b) < int(b[0]&0xf)*4 {
			return p, false
		}
		p.v4 = true
		p.l4Off = int(b[0]&0xf) * 4
		p.proto = wire.IPProtocol(b[9])
		p.ipLen = int(binary.BigEndian.Uint16(b[2:]))
		p.id = binary.BigEndian.Uint16(b[4:])
		p.src, p.dst = netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20]))
		p.ipCsumOK = wire.Checksum(b[:p.l4Off], 0) == 0xffff
	case 6:
		if len(b) < 40 {
			return p, false
		}
		if n := int(binary.BigEndian.Uint16(b[4:])); n != 0 {
			p.ipLen = 40 + n
		}
		p.src, p.dst = netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40]))
		next, off := b[6], 40
		for next == 0 || next == 60 {
			if len(b) < off+8 {
				return p, false
			}
			next, off = b[off], off+(int(b[off+1])+1)*8
		}
		p.proto, p.l4Off = wire.IPProtocol(next), off
		p.ipCsumOK = true
	default:
		return p, false
	}
	end := len(b)
	if p.ipLen != 0 {
		if p.ipLen > len(b) {
			return p, false
		}
		end = p.ipLen
	}
	switch p.proto {
	case wire.IPProtoTCP:
		if end < p.l4Off+20 || b[p.l4Off+12]>>4 < 5 || end < p.l4Off+int(b[p.l4Off+12]>>4)*4 {
			return p, false
		}
		p.hdrLen = p.l4Off + int(b[p.l4Off+12]>>4)*4
		p.seq = binary.BigEndian.Uint32(b[p.l4Off+4:])
		p.flags = b[p.l4Off+13]
	case wire.IPProtoUDP:
		if end < p.l4Off+8 {
			return p, false
		}
		p.hdrLen = p.l4Off + 8
	default:
		return p, false
	}
	p.headers, p.data = b[:p.hdrLen], b[p.hdrLen:end]
	l4 := b[p.l4Off:end]
	p.l4OK = wire.ChecksumCombine(wire.PseudoHeaderChecksum(p.proto, p.src, p.dst, len(l4)), wire.Checksum(l4, 0)) == 0xffff
	return p, true
}

// checkSegments checks that segs are a correct segmentation of the packet
// orig with segment size size, and returns a description of the first
// problem.
func checkSegments(orig []byte, size int, segs []*buf.Packet) error {
	op, ok := parse(orig)
	if !ok {
		return fmt.Errorf("original does not parse")
	}
	if len(segs) == 0 {
		return fmt.Errorf("no segments")
	}
	var payload []byte
	for i, s := range segs {
		b := s.ToBytes()
		p, ok := parse(b)
		if !ok {
			return fmt.Errorf("segment %d does not parse: % x", i, b)
		}
		if p.ipLen != len(b) {
			return fmt.Errorf("segment %d: IP length %d, packet %d", i, p.ipLen, len(b))
		}
		if !p.ipCsumOK {
			return fmt.Errorf("segment %d: bad IPv4 header checksum", i)
		}
		if !p.l4OK {
			return fmt.Errorf("segment %d: bad %v checksum", i, p.proto)
		}
		if p.proto == wire.IPProtoUDP && binary.BigEndian.Uint16(b[p.l4Off+4:]) != uint16(len(b)-p.l4Off) {
			return fmt.Errorf("segment %d: bad UDP length", i)
		}
		if len(p.data) > size || (i < len(segs)-1 && len(p.data) != size) {
			return fmt.Errorf("segment %d: %d payload bytes with segment size %d", i, len(p.data), size)
		}
		if p.v4 && p.id != op.id+uint16(i) {
			return fmt.Errorf("segment %d: IP ID %d, want %d", i, p.id, op.id+uint16(i))
		}
		if p.proto == wire.IPProtoTCP {
			if want := op.seq + uint32(len(payload)); p.seq != want {
				return fmt.Errorf("segment %d: seq %d, want %d", i, p.seq, want)
			}
			last := i == len(segs)-1
			want := op.flags
			if i > 0 {
				want &^= tcpCWR
			}
			if !last {
				want &^= tcpFIN | tcpPSH
			}
			if p.flags != want {
				return fmt.Errorf("segment %d: TCP flags %#x, want %#x", i, p.flags, want)
			}
			// Everything else in the TCP header is copied.
			if !bytes.Equal(p.headers[p.l4Off+8:p.l4Off+13], op.headers[op.l4Off+8:op.l4Off+13]) ||
				!bytes.Equal(p.headers[p.l4Off+18:], op.headers[op.l4Off+18:]) {
				return fmt.Errorf("segment %d: TCP header not copied", i)
			}
		}
		if s.Offload != (buf.Offload{CsumValid: true}) {
			return fmt.Errorf("segment %d: offload %+v", i, s.Offload)
		}
		payload = append(payload, p.data...)
	}
	if !bytes.Equal(payload, op.data) {
		return fmt.Errorf("payloads concatenate to %d bytes, want the original %d", len(payload), len(op.data))
	}
	return nil
}

func releaseAll(pkts []*buf.Packet) {
	for _, p := range pkts {
		p.Release()
	}
}

func mustCheck(t *testing.T, orig []byte, size int, segs []*buf.Packet) {
	t.Helper()
	if err := checkSegments(orig, size, segs); err != nil {
		t.Fatal(err)
	}
}
