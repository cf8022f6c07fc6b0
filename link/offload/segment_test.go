package offload

import (
	"encoding/binary"
	"errors"
	"testing"

	"ustack/buf"
	"ustack/link"
)

var tsOpt = []byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2} // NOP NOP timestamps

func TestSegment(t *testing.T) {
	tests := []struct {
		name  string
		s     spec
		gso   buf.GSOType
		size  int
		cuts  []int // view boundaries in the input
		nsegs int
	}{
		{"tcp4 exact", spec{payload: 3000, tcpFlags: 0x10, seq: 1000}, buf.GSOTCPv4, 1000, nil, 3},
		{"tcp4 flags", spec{payload: 2500, tcpFlags: tcpFIN | tcpPSH | tcpCWR | 0x10 | 0x40, seq: 0xfffffc00}, buf.GSOTCPv4, 1000, nil, 3},
		{"tcp4 options", spec{payload: 4000, ipOpts: []byte{1, 1, 1, 0}, tcpOpts: tsOpt, tcpFlags: 0x18, id: 0xfffe}, buf.GSOTCPv4, 1448, nil, 3},
		{"tcp4 one segment", spec{payload: 500, tcpFlags: 0x19}, buf.GSOTCPv4, 1000, nil, 1},
		{"tcp4 no payload", spec{payload: 0, tcpFlags: 0x10}, buf.GSOTCPv4, 1000, nil, 1},
		{"tcp4 bad csum in", spec{payload: 3001, tcpFlags: 0x10, badCsum: true}, buf.GSOTCPv4, 1000, nil, 4},
		{"tcp4 ip length 0", spec{payload: 3000, tcpFlags: 0x10, ipLenZero: true}, buf.GSOTCPv4, 999, nil, 4},
		{"tcp4 views", spec{payload: 5000, tcpFlags: 0x18}, buf.GSOTCPv4, 1001, []int{7, 41, 1043, 1044, 3001, 4999}, 5},
		{"tcp4 64k", spec{payload: 65535 - 40, tcpFlags: 0x18}, buf.GSOTCPv4, 1448, nil, 46},
		{"tcp6", spec{v6: true, payload: 4000, tcpFlags: 0x18, tcpOpts: tsOpt}, buf.GSOTCPv6, 1428, nil, 3},
		{"tcp6 hop-by-hop", spec{v6: true, hopByHop: 2, payload: 3000, tcpFlags: 0x11}, buf.GSOTCPv6, 1000, nil, 3},
		{"tcp6 views", spec{v6: true, payload: 3333, tcpFlags: 0x10}, buf.GSOTCPv6, 1000, []int{59, 61, 62, 2000}, 4},
		{"udp4", spec{udp: true, payload: 2500, id: 7}, buf.GSOUDPL4, 1000, nil, 3},
		{"udp4 views", spec{udp: true, payload: 2500}, buf.GSOUDPL4, 333, []int{3, 29, 30, 31, 1001}, 8},
		{"udp6", spec{v6: true, udp: true, payload: 3000}, buf.GSOUDPL4, 1200, nil, 3},
		{"udp6 one", spec{v6: true, udp: true, payload: 10}, buf.GSOUDPL4, 1200, nil, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := build(tc.s)
			pkt := packetOf(b, tc.cuts...)
			pkt.Offload = buf.Offload{GSO: tc.gso, GSOSize: uint16(tc.size), NeedsCsum: true, CsumStart: 20, CsumOffset: 16}
			pkt.IfIndex = 3
			segs, err := Segment(pkt, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer releaseAll(segs)
			if len(segs) != tc.nsegs {
				t.Fatalf("%d segments, want %d", len(segs), tc.nsegs)
			}
			mustCheck(t, b, tc.size, segs)
			for i, s := range segs {
				if s.IfIndex != 3 {
					t.Errorf("segment %d: IfIndex %d, want 3", i, s.IfIndex)
				}
				if s.Headroom() < buf.DefaultHeadroom {
					t.Errorf("segment %d: headroom %d", i, s.Headroom())
				}
			}
		})
	}
}

func TestSegmentPadding(t *testing.T) {
	b := build(spec{udp: true, payload: 100})
	padded := append(append([]byte{}, b...), 0xee, 0xee, 0xee)
	pkt := buf.FromBytes(padded)
	pkt.Offload = buf.Offload{GSO: buf.GSOUDPL4, GSOSize: 60}
	segs, err := Segment(pkt, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer releaseAll(segs)
	mustCheck(t, b, 60, segs)
}

func TestSegmentNone(t *testing.T) {
	pkt := buf.FromBytes([]byte{1, 2, 3})
	out, err := Segment(pkt, nil)
	if err != nil || len(out) != 1 || out[0] != pkt {
		t.Fatalf("Segment of a non-GSO packet = %v, %v; want it back", out, err)
	}
	pkt.Release()
}

func TestSegmentErrors(t *testing.T) {
	tcp4 := build(spec{payload: 3000})
	tests := []struct {
		name string
		b    []byte
		gso  buf.GSOType
		size int
		want error
	}{
		{"empty", nil, buf.GSOTCPv4, 1000, ErrMalformed},
		{"not ip", []byte{0x10, 0, 0, 0}, buf.GSOTCPv4, 1000, ErrMalformed},
		{"tcp4 on v6", build(spec{v6: true, payload: 3000}), buf.GSOTCPv4, 1000, ErrMalformed},
		{"tcp6 on v4", tcp4, buf.GSOTCPv6, 1000, ErrMalformed},
		{"udp gso on tcp", tcp4, buf.GSOUDPL4, 1000, ErrMalformed},
		{"tcp gso on udp", build(spec{udp: true, payload: 3000}), buf.GSOTCPv4, 1000, ErrMalformed},
		{"truncated ip", tcp4[:19], buf.GSOTCPv4, 1000, ErrMalformed},
		{"truncated tcp", tcp4[:39], buf.GSOTCPv4, 1000, ErrMalformed},
		{"ip length past end", tcp4[:1000], buf.GSOTCPv4, 100, ErrMalformed},
		{"zero size", tcp4, buf.GSOTCPv4, 0, ErrGSOSize},
		{"segment too large", build(spec{udp: true, ipLenZero: true, payload: 70000}), buf.GSOUDPL4, 65535, ErrGSOSize},
		{"too many", build(spec{udp: true, payload: 5000}), buf.GSOUDPL4, 1, ErrGSOSize},
		{"fragment", func() []byte {
			b := build(spec{payload: 3000})
			binary.BigEndian.PutUint16(b[6:], 0x2000)
			return b
		}(), buf.GSOTCPv4, 1000, ErrMalformed},
		{"tcp data offset", func() []byte {
			b := build(spec{payload: 3000})
			b[32] = 0x40
			return b
		}(), buf.GSOTCPv4, 1000, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pkt := buf.FromBytes(tc.b)
			pkt.Offload = buf.Offload{GSO: tc.gso, GSOSize: uint16(tc.size)}
			prev := []*buf.Packet{buf.FromBytes([]byte{9})}
			out, err := Segment(pkt, prev)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if len(out) != 1 || out[0] != prev[0] {
				t.Fatalf("out changed on error: %v", out)
			}
			prev[0].Release()
		})
	}
}

func TestSegmentFrame(t *testing.T) {
	ip := build(spec{payload: 3000, tcpFlags: 0x18})
	for _, tags := range []int{0, 1, 2} {
		eth := []byte{2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2}
		for range tags {
			eth = append(eth, 0x81, 0x00, 0x00, 0x05)
		}
		eth = append(eth, 0x08, 0x00)
		frame := append(append([]byte{}, eth...), ip...)
		pkt := buf.FromBytes(frame)
		pkt.Offload = buf.Offload{GSO: buf.GSOTCPv4, GSOSize: 1000, NeedsCsum: true, CsumStart: uint16(len(eth) + 20), CsumOffset: 16}
		segs, err := SegmentFrame(pkt, link.TypeEthernet, nil)
		if err != nil {
			t.Fatal(err)
		}
		var ipSegs []*buf.Packet
		for _, s := range segs {
			b := s.ToBytes()
			if string(b[:len(eth)]) != string(eth) {
				t.Fatalf("%d tags: link header % x, want % x", tags, b[:len(eth)], eth)
			}
			ipSegs = append(ipSegs, buf.FromBytes(b[len(eth):]))
			ipSegs[len(ipSegs)-1].Offload = s.Offload
		}
		mustCheck(t, ip, 1000, ipSegs)
		releaseAll(ipSegs)
		releaseAll(segs)
	}
	// A frame too short for its link header.
	pkt := buf.FromBytes([]byte{1, 2, 3})
	pkt.Offload.GSO, pkt.Offload.GSOSize = buf.GSOTCPv4, 100
	if _, err := SegmentFrame(pkt, link.TypeEthernet, nil); !errors.Is(err, ErrMalformed) {
		t.Fatalf("short frame: err = %v", err)
	}
}

func BenchmarkSegment(b *testing.B) {
	frame := build(spec{payload: 65535 - 40, tcpFlags: 0x18})
	out := make([]*buf.Packet, 0, 64)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		pkt := buf.FromBytes(frame)
		pkt.Offload = buf.Offload{GSO: buf.GSOTCPv4, GSOSize: 1448}
		var err error
		out, err = Segment(pkt, out[:0])
		if err != nil {
			b.Fatal(err)
		}
		releaseAll(out)
	}
}
