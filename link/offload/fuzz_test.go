package offload

import (
	"bytes"
	"encoding/binary"
	"testing"

	"ustack/buf"
	"ustack/link"
	"ustack/wire"
)

// FuzzSegment feeds Segment arbitrary packets, GSO types, segment sizes and
// view layouts. It must not panic; when it succeeds the segments must be
// valid, of the right sizes, and their payloads must concatenate to the
// original payload. And GRO must undo GSO: Coalesce of the segments,
// segmented again, gives the same bytes.
func FuzzSegment(f *testing.F) {
	seeds := []struct {
		s   spec
		gso buf.GSOType
	}{
		{spec{payload: 3000, tcpFlags: 0x19 | tcpCWR}, buf.GSOTCPv4},
		{spec{payload: 1000, tcpOpts: tsOpt, ipOpts: []byte{1, 1, 1, 0}}, buf.GSOTCPv4},
		{spec{v6: true, payload: 2000, tcpFlags: 0x18}, buf.GSOTCPv6},
		{spec{v6: true, hopByHop: 1, payload: 2000}, buf.GSOTCPv6},
		{spec{udp: true, payload: 1500}, buf.GSOUDPL4},
		{spec{v6: true, udp: true, payload: 1500, ipLenZero: true}, buf.GSOUDPL4},
	}
	for _, sd := range seeds {
		f.Add(build(sd.s), uint8(sd.gso), uint16(500), uint16(33), uint16(700))
	}
	f.Fuzz(func(t *testing.T, b []byte, gso uint8, size, cut1, cut2 uint16) {
		pkt := packetOf(b, int(cut1), int(cut2))
		if pkt == nil {
			return
		}
		pkt.Offload = buf.Offload{GSO: buf.GSOType(gso % 4), GSOSize: size}
		segs, err := Segment(pkt, nil)
		if err != nil {
			return
		}
		defer releaseAll(segs)
		if gso%4 == 0 {
			return // returned as it is
		}
		if err := checkSegments(b, int(size), segs); err != nil {
			t.Fatal(err)
		}
		var want []byte
		var in []*buf.Packet
		for _, s := range segs {
			want = append(want, s.ToBytes()...)
			in = append(in, s.Clone())
		}
		var c Coalescer
		merged := c.Coalesce(in, link.TypeIP, nil)
		if len(segs) > 1 && len(segs) <= maxRunSegs && gso%4 != uint8(buf.GSOUDPL4) && c.Merged == 0 && tcpMergeable(segs[0]) {
			t.Fatalf("none of %d segments merged", len(segs))
		}
		var got []byte
		for _, m := range merged {
			again, err := Segment(m, nil)
			if err != nil {
				t.Fatalf("segmenting a merged packet: %v", err)
			}
			for _, s := range again {
				got = append(got, s.ToBytes()...)
			}
			releaseAll(again)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("GSO then GRO then GSO: %d bytes differ from GSO's %d", len(got), len(want))
		}
	})
}

// tcpMergeable tells whether the first segment of a TCP packet cut by
// Segment may head a GRO run: ACK and no other control bit (PSH only if
// it is the last), no IPv4 options or IPv6 extension headers.
func tcpMergeable(p *buf.Packet) bool {
	b := p.ToBytes()
	pp, ok := parse(b)
	if !ok || pp.proto != wire.IPProtoTCP {
		return false
	}
	if (pp.v4 && pp.l4Off != 20) || (!pp.v4 && pp.l4Off != 40) {
		return false
	}
	return pp.flags&^tcpPSH == tcpACK
}

// FuzzCoalesce runs Coalesce over batches that a small program in the
// fuzzer's bytes builds: in-order segments of three flows (two IPv4, one
// IPv6) with every kind of disturbance a merge must respect (gaps, PSH,
// FIN, bad checksums, other TTL, window, IP ID or timestamp, options),
// UDP datagrams and raw garbage, as bare IP packets or Ethernet frames
// (some VLAN-tagged), in one or more views. It must not panic; every
// input packet must end in the output or be released; per flow, the
// output, cut again with Segment, must be the input's segments exactly
// (sequence numbers, flags, headers but for IP ID and TSval, payload,
// checksum validity); merged packets must have correct lengths, IPv4
// header checksums and partial TCP checksums; other frames come out as
// they went in, in order.
func FuzzCoalesce(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0})
	f.Add([]byte{1, 0, 8, 16, 0, 0, 8, 5, 1, 0, 16, 5, 2, 0})
	f.Add([]byte{0, 0, 13, 21, 5, 3, 0, 29, 6, 7, 1, 2, 3, 4, 5, 6, 7, 0, 0, 8, 7})
	f.Add([]byte{1, 16, 16, 16, 5, 9, 16, 5, 11, 16, 5, 12, 16, 0, 2, 3})
	f.Fuzz(func(t *testing.T, prog []byte) {
		if len(prog) == 0 {
			return
		}
		lt := link.TypeIP
		if prog[0]&1 != 0 {
			lt = link.TypeEthernet
		}
		prog = prog[1:]
		next := func() byte {
			if len(prog) == 0 {
				return 0
			}
			b := prog[0]
			prog = prog[1:]
			return b
		}
		type flow struct {
			seq   uint32
			id    uint16
			ts    uint32
			size  int
			vlan  bool
			sport uint16
			v6    bool
		}
		flows := []*flow{
			{seq: 1000, size: 100, sport: 1},
			{seq: 0xffffff00, size: 60, sport: 2, vlan: true},
			{seq: 7, size: 80, sport: 3, v6: true},
		}
		var frames [][]byte
		var cuts []int
		for len(prog) > 0 && len(frames) < 64 {
			op := next()
			fl := flows[int(op>>4)%len(flows)]
			s := spec{v6: fl.v6, sport: fl.sport, seq: fl.seq, id: fl.id, tcpFlags: 0x10,
				tcpOpts: tsOpt, payload: fl.size, payloadAt: int(fl.seq % 4096)}
			var raw []byte
			switch op & 0xf {
			case 0, 1, 2, 3, 4: // in order, full size
			case 5: // shorter
				s.payload = int(next()) % (fl.size + 1)
			case 6: // a disturbance
				switch d := next(); d % 11 {
				case 0:
					s.seq += uint32(d)
				case 1:
					s.tcpFlags |= tcpPSH
				case 2:
					s.tcpFlags |= tcpFIN
				case 3:
					s.badCsum = true
				case 4:
					s.ttl = d
				case 5:
					s.wnd = uint16(d) + 1
				case 6:
					s.id += uint16(d)
				case 7:
					fl.ts -= uint32(d) // goes back
				case 8:
					s.tcpOpts = nil
				case 9:
					s.tcpFlags = d
				case 10:
					s.ipOpts = []byte{1, 1, 1, 0}
				}
			case 7: // the timestamp moves on
				fl.ts += uint32(next())
			case 8:
				s = spec{udp: true, v6: fl.v6, payload: int(next())}
			case 9: // garbage
				raw = make([]byte, int(next())%80)
				for i := range raw {
					raw[i] = next()
				}
			default:
				cuts = append(cuts, int(next()))
				continue
			}
			var b []byte
			if raw != nil {
				b = raw
			} else {
				if s.tcpOpts != nil {
					s.tcpOpts = append([]byte{}, tsOpt...)
					binary.BigEndian.PutUint32(s.tcpOpts[4:], fl.ts)
				}
				b = build(s)
				if !s.udp && s.tcpFlags&0x07 == 0 {
					fl.seq += uint32(s.payload)
					fl.id = s.id + 1
				}
				if lt == link.TypeEthernet {
					b = ethFrame(b, s.v6, fl.vlan)
				}
			}
			frames = append(frames, b)
		}
		var in []*buf.Packet
		for i, b := range frames {
			cut := len(b)
			if i < len(cuts) {
				cut = cuts[i]
			}
			p := packetOf(b, cut)
			if p == nil {
				p = buf.New(buf.DefaultHeadroom, 0)
			}
			in = append(in, p)
		}
		var c Coalescer
		out := c.Coalesce(in, lt, nil)
		if err := checkCoalesce(lt, frames, in, out); err != nil {
			t.Fatal(err)
		}
		if c.n != 0 {
			t.Fatalf("%d runs left open", c.n)
		}
	})
}
